"""The store's schema version, apart so ``busdoc --version`` need not import SQLAlchemy."""

SCHEMA_VERSION = 2
