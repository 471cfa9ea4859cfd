"""The client estate: inventory of hosts, health checks, provider access on the hosts."""
