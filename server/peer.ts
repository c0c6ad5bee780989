/**
 * What a transport gives a room: a way to send a frame and to close. A WebSocket connection is a peer;
 * so is anything else that can carry y-websocket frames in order.
 */
export interface Peer {
  /** Sends one frame. Must not throw: a transport that cannot send closes itself. */
  send (frame: Uint8Array): void
  /** Ends the connection with a close code and reason (see errors.ts). Idempotent. */
  close (code: number, reason: string): void
  /** Read-only peers receive everything and change nothing. */
  readonly canWrite: boolean
  /** Short text for log lines: transport, address, id. */
  readonly label: string
}
