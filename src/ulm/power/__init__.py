"""Power drivers (the `Power` protocol): IPMI (pyghmi), Wake-on-LAN, and compositions."""
