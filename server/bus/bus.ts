/**
 * Carries updates and awareness between instances that serve the same room. An update is published only
 * after it is committed to storage, so a message the bus loses is never lost data: an instance that
 * cannot replay what it missed reports a gap, and the room reloads from storage (Yjs updates are
 * idempotent, so applying something twice is harmless).
 */
export interface Bus {
  /**
   * Starts delivering what other instances publish on `room` (never this instance's own messages), in
   * the order they were published. Resolves once messages published from now on will be delivered.
   */
  subscribe (room: string, handler: BusHandler): Promise<BusSubscription>
  publish (room: string, message: BusMessage): Promise<void>
  close (): Promise<void>
}

export interface BusMessage {
  readonly kind: 'update' | 'awareness'
  readonly data: Uint8Array
  /**
   * An update's commit sequence number in storage (see `Storage`): the message holds all of that commit.
   * A receiver that sees a number skipped knows it missed a commit and reads it from storage.
   */
  readonly seq?: number
  /**
   * When it was published (ms since the epoch), if the bus knows (a Redis stream id starts with it).
   * Set on delivery; used only for the bus lag metric.
   */
  readonly sentAt?: number
}

export interface BusHandler {
  message (message: BusMessage): void
  /** Messages were missed and cannot be replayed: reload the room from storage. */
  gap (): void
}

export interface BusSubscription {
  close (): Promise<void>
}
