"""Constants of the stream model shared by the network and the connections (RFC 6298)."""

#: RFC 6298's initial RTO (s), before the first RTT sample.
INITIAL_RTO_S = 1.0
#: RFC 6298's clock granularity G (s).
CLOCK_GRANULARITY_S = 0.001
#: Retransmissions of one segment before the transport gives up on the connection
#: (Linux ``net.ipv4.tcp_retries2``).
MAX_RETRANSMISSIONS = 15
