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
  /** Failed logins (bad credentials, not authorized), banned attempts, and lockouts started. */
  authFailures = 0;
  authBanned = 0;
  authBans = 0;
  authReloadFailures = 0;
  /** Publishes, subscriptions and deliveries an ACL refused. */
  aclDenied = 0;
  /** Queue entries handed back for another delivery (consumer gone, NACK). */
  redelivered = 0;
  /** Queue entries moved to a dead-letter queue. */
  deadLettered = 0;
  connectionsAccepted = 0;
  connectionsRejected = 0;
  protocolErrors = 0;
  /** TLS handshakes that failed or whose client certificate was refused (wrong CA, expired, missing, plain TCP). */
  tlsHandshakeFailures = 0;

  // Limits (README "Limits"): each refusal or disconnect counted once, at the place it happens.
  /** Connections closed at accept: the broker's or the listener's maximum was reached. */
  refusedMaxConnections = 0;
  /** Connections closed at accept: their source address had its maximum. */
  refusedPerAddress = 0;
  /** Connections closed at accept: the listener's connect rate was exceeded. */
  refusedConnectRate = 0;
  /** Connections closed because no valid CONNECT came within the connect timeout. */
  connectTimeouts = 0;
  /** MQTT packets and STOMP frames (or their header lines) over the size limits. */
  packetsTooLarge = 0;
  /** Topic names, filters and destinations over maxTopicLength or maxTopicLevels. */
  topicLimitRefused = 0;
  /** CONNECTs refused for a client identifier over maxClientIdLength. */
  clientIdTooLong = 0;
  /** Subscriptions refused because the client had limits.maxSubscriptions. */
  subscriptionsRefused = 0;
  /** Times a client's publish rate ran over limits.publishRate (reading paused, or disconnected). */
  publishRateLimited = 0;
  /** Connections closed because their output stayed over the buffer limit for the drain timeout. */
  slowConsumers = 0;
}
