"""The web console face of the HTTP layer: server-rendered pages for supervisors,
compliance officers and auditors, on the same domain modules as the API."""
