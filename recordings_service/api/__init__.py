"""The JSON API face of the HTTP layer: its route table, handlers, problem+json errors and
OpenAPI document."""
