/**
 * A channel that uses `primary` (WebSocket) when it can and `secondary` (long-polling) when it cannot,
 * and goes back to the primary once it works again.
 *
 * Each connection the provider opens tries the primary first, unless the primary failed to open within
 * the last `retryPrimaryMs`. A primary that closes before it opened (or does not open within
 * `openTimeoutMs`: blocked upgrades often hang rather than fail) is replaced by the secondary, invisibly
 * to the provider. A refusal that is final (close codes 4400-4499: bad token, forbidden) is passed on
 * instead, since the server was reached and would refuse the secondary too.
 *
 * A secondary that fails to open too means the server could not be reached at all (down, restarting, no
 * network): the next connection tries the primary first again, so that a page comes back over WebSocket
 * after an outage.
 *
 * While on the secondary it probes the primary every `retryPrimaryMs`; when a probe opens, it closes the
 * secondary with `switchCode` (transient, so the provider reconnects at once) and the next connection
 * uses the primary. A session never changes transport under the provider's feet: it sees a close and a
 * fresh connection, and resyncs as after any reconnect.
 */
import type { Channel, ChannelEvents, ChannelFactory, ChannelKind } from './channel.js'
import { isFinalClose } from './close-codes.js'

export interface FallbackOptions {
  /** Treat a primary that has not opened after this long as failed. Default 5 s. */
  readonly openTimeoutMs?: number
  /** Probe the primary this often while on the secondary, and skip it this long after it failed. Default 30 s. */
  readonly retryPrimaryMs?: number
  /** The close code sent to the provider when it should reconnect over the primary. Default 1000 (transient for y-websocket style providers). */
  readonly switchCode?: number
  /** Told the kind of every channel that opens. */
  readonly onKind?: (kind: ChannelKind) => void
}


const positive = (name: string, value: number | undefined, fallback: number): number => {
  const result = value ?? fallback
  if (!Number.isFinite(result) || result <= 0) throw new RangeError(`${name} must be a positive number, got ${String(value)}`)
  return result
}

export const fallbackChannel = (primary: ChannelFactory, secondary: ChannelFactory, options: FallbackOptions = {}): ChannelFactory => {
  const openTimeoutMs = positive('openTimeoutMs', options.openTimeoutMs, 5000)
  const retryPrimaryMs = positive('retryPrimaryMs', options.retryPrimaryMs, 30_000)
  const switchCode = options.switchCode ?? 1000
  // Shared by the connections of one factory (one provider): when the primary last failed to open.
  let primaryFailedAt = -Infinity

  return (target, events) => {
    let active: Channel | null = null
    let pending: Channel | null = null
    let closed = false
    let probeTimer: ReturnType<typeof setTimeout> | null = null
    let probe: Channel | null = null
    /** The last channel tried: what a connection that never opened reports as its kind. */
    let tried: Channel | null = null

    const finish = (code: number, reason: string): void => {
      if (closed) return
      closed = true
      if (probeTimer !== null) clearTimeout(probeTimer)
      probe?.close()
      events.close(code, reason)
    }

    /** Opens `factory`; `onEarlyClose` decides what a close before open means. */
    const attempt = (factory: ChannelFactory, onEarlyClose: (code: number, reason: string) => void, timeoutMs: number | null): void => {
      let opened = false
      let abandoned = false
      const timer = timeoutMs === null ? null : setTimeout(() => {
        abandoned = true
        channel.close(1006, 'did not open in time')
        onEarlyClose(1006, 'did not open in time')
      }, timeoutMs)
      const channel: Channel = factory(target, {
        open: () => {
          if (abandoned || closed) return
          if (timer !== null) clearTimeout(timer)
          opened = true
          pending = null
          active = channel
          options.onKind?.(channel.kind)
          events.open()
          if (factory === secondary) scheduleProbe()
        },
        message: (frame) => {
          if (active === channel && !closed) events.message(frame)
        },
        close: (code, reason) => {
          if (abandoned) return
          if (timer !== null) clearTimeout(timer)
          if (opened) return finish(code, reason)
          // Closed by our own `close` while it was opening: that is no failure of the transport.
          if (closed) return
          pending = null
          onEarlyClose(code, reason)
        },
      })
      pending = channel
      tried = channel
    }

    const useSecondary = (): void => {
      if (closed) return
      attempt(secondary, (code, reason) => {
        // Both failed: the server is down or unreachable, which says nothing against the primary.
        if (!isFinalClose(code)) primaryFailedAt = -Infinity
        finish(code, reason)
      }, null)
    }

    const scheduleProbe = (): void => {
      probeTimer = setTimeout(() => {
        probeTimer = null
        if (closed) return
        let opened = false
        const timer = setTimeout(() => { current?.close(1006, 'probe timed out') }, openTimeoutMs)
        const current: Channel = probe = primary(target, {
          open: () => {
            opened = true
            clearTimeout(timer)
            current.close(1000, 'probe')
            primaryFailedAt = -Infinity
            if (!closed) active?.close(switchCode, 'switching transport')
          },
          message: () => {},
          close: () => {
            clearTimeout(timer)
            if (probe === current) probe = null
            if (!opened && !closed) {
              primaryFailedAt = Date.now()
              scheduleProbe()
            }
          },
        })
      }, retryPrimaryMs)
    }

    if (Date.now() - primaryFailedAt < retryPrimaryMs) {
      useSecondary()
    } else {
      attempt(primary, (code, reason) => {
        if (isFinalClose(code)) return finish(code, reason)
        primaryFailedAt = Date.now()
        useSecondary()
      }, openTimeoutMs)
    }

    return {
      get kind (): ChannelKind {
        return (active ?? pending ?? tried)?.kind ?? 'websocket'
      },
      send: (frame) => { active?.send(frame) },
      close: (code, reason) => {
        if (closed) return
        const current = active ?? pending
        if (current === null) return finish(code ?? 1000, reason ?? '')
        // An open channel's close event finishes us; one still opening is closed and finished here.
        if (current === pending) {
          pending = null
          current.close(code, reason)
          finish(code ?? 1000, reason ?? '')
        } else {
          current.close(code, reason)
        }
      },
    }
  }
}
