#!/usr/bin/env bash
# Install and start what the test suite needs on a fresh Debian machine:
# tcpdump and tshark (real captures, an independent decoder to compare with),
# chromium (the HTML report is checked in a real browser), tmux (the dashboard in a
# real terminal), a JDK with the RabbitMQ and Jackson jars (a Java client built from
# the generated schemas), RabbitMQ with the management plugin (tracing switched over
# HTTP) and PostgreSQL.
# Idempotent: a machine that has everything running is left as it is.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v tcpdump >/dev/null || missing+=(tcpdump)
command -v tshark >/dev/null || missing+=(tshark)
command -v rabbitmqctl >/dev/null || missing+=(rabbitmq-server)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v tmux >/dev/null || missing+=(tmux)
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v node >/dev/null || missing+=(nodejs npm)
[ -e /usr/share/java/com.rabbitmq.client.jar ] || [ -e /usr/share/java/amqp-client.jar ] \
    || missing+=(librabbitmq-client-java)
[ -e /usr/share/java/jackson-databind.jar ] || missing+=(libjackson2-databind-java)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
    echo "starting RabbitMQ"
    as_root rabbitmq-server -detached
fi
# A detached node takes a few seconds to register; await_startup fails until it has.
for _ in $(seq 60); do
    as_root rabbitmqctl -q await_startup >/dev/null 2>&1 && break
    sleep 2
done
as_root rabbitmqctl -q await_startup
as_root rabbitmq-plugins -q enable rabbitmq_management >/dev/null

cluster=$(ls /etc/postgresql | head -n1)
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL $cluster"
    as_root pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
    for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
