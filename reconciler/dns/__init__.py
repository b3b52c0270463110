"""The embedded DNS server (host.dns_resolver): what it knows, how it answers, how it serves.

- `config` (pure): per container namespace, the names it can resolve (a table given by
  the caller: the scope of name discovery), its upstream servers and Docker's ndots rule;
- `answering` (pure): a query and a namespace's config in, an answer or "forward" out;
- `forwarding` (I/O): a query sent to the upstream servers, each from the namespace it
  must be asked from;
- `server` (I/O): one selector loop serving UDP and TCP on 127.0.0.11:53 inside every
  served namespace;
- `metrics` (I/O): the Prometheus counters and latency histogram.
The wire format is dnspython's (`dns.message`); nothing here packs DNS by hand.
"""
