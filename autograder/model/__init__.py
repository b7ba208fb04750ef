"""The data model: results, records and their serialisation. Imports nothing above it."""
