"""busdoc: document AMQP (RabbitMQ) interfaces from the traffic itself."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("busdoc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
