"""The composition root: builds every service once, as typed fields, wires the web app and runs the server."""
