"""The open conformance kit: tests any partner's Interlude (and Sonata) server over HTTP as an SP would.

It loads MEF's definitions from the user's folder at run time (never bundled), runs named scenarios through
a recording HTTP client, validates every request, response and notification against those definitions, and
reports pass/fail/skip with the evidence (live summary, JUnit XML, a self-contained HTML page). It talks HTTP
only: nothing here imports the partner's use cases, store or adapters.
"""
