/**
 * Stats: plain counters the core and adapters bump on their paths; metrics and $SYS read them.
 * Numbers only, no labels beyond the closed sets named here, so bumping costs one add.
 */
export class Stats {
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  publishDropped = 0;
  /** Messages dropped because a session queue was full. */
  queueDropped = 0;
  /** QoS 0 messages dropped because the receiver's socket was over its buffer limit. */
  qos0Dropped = 0;
  /** Messages dropped because they expired before delivery. */
  expired = 0;
  /** Messages not sent because they exceeded the client's Maximum Packet Size. */
  oversizeDropped = 0;
  storageErrors = 0;
  /** Queue entries handed back for another delivery (consumer gone, NACK). */
  redelivered = 0;
  /** Queue entries moved to a dead-letter queue. */
  deadLettered = 0;
  connectionsAccepted = 0;
  connectionsRejected = 0;
  protocolErrors = 0;
  /** TLS handshakes that failed or whose client certificate was refused (wrong CA, expired, missing, plain TCP). */
  tlsHandshakeFailures = 0;
}
