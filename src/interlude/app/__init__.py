"""The composition root: builds every service once, as typed fields, and wires the web app."""
