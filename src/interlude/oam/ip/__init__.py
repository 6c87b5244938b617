"""IP service measurement beside Y.1731: TWAMP-Light / STAMP and ICMP echo sessions, a reflector, throughput."""
