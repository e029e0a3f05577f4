"""The schema registry server: a Confluent-compatible registry whose state lives in a log.

Its parts: :mod:`.avro_names` and :mod:`.avro_schema` (Avro schemas as a graph, validation, canonical
text), :mod:`.compatibility` (the resolution checker), :mod:`.references` (schema references),
:mod:`.state` (the pure state machine over log records), :mod:`.log` (the storage port and its Kafka
log), :mod:`.memory_log` (the same port in memory) and :mod:`.service` (:class:`SchemaRegistry`, which
decides writes and answers reads). Its HTTP
routes live in ``gateway.registry_api``; clients use ``schemas.registry_client``.
"""
