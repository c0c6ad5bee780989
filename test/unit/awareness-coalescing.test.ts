import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { readAwarenessEntries } from '../../server/awareness-codec.js'
import { AwarenessCoalescing } from '../../server/awareness-coalescing.js'
import { encodeAwarenessStates } from '../helpers/awareness.js'
import { waitFor } from '../helpers/wait.js'

interface Sent { readonly at: number, readonly entries: ReturnType<typeof readAwarenessEntries> }

const made: Array<{ awareness: awarenessProtocol.Awareness, coalescing: AwarenessCoalescing }> = []

/** A room's awareness and its coalescing, recording what goes to peers and to other instances. */
const setUp = (intervalMs: number): { set: (client: number, clock: number, local?: boolean) => void, coalescing: AwarenessCoalescing, broadcasts: Sent[], publishes: Sent[] } => {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awareness.setLocalState(null)
  const broadcasts: Sent[] = []
  const publishes: Sent[] = []
  const coalescing = new AwarenessCoalescing(awareness, {
    broadcast: (update) => broadcasts.push({ at: performance.now(), entries: readAwarenessEntries(update) }),
    publish: (update) => publishes.push({ at: performance.now(), entries: readAwarenessEntries(update) }),
  }, intervalMs)
  made.push({ awareness, coalescing })
  const set = (client: number, clock: number, local = true): void => {
    awarenessProtocol.applyAwarenessUpdate(awareness, encodeAwarenessStates([[client, clock, `{"cursor":${clock}}`]]), 'test')
    coalescing.changed([client], local)
  }
  return { set, coalescing, broadcasts, publishes }
}

const endOfTask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('AwarenessCoalescing', () => {
  // An Awareness checks its states on a timer: destroyed, it lets the process end.
  afterEach(() => { for (const { awareness, coalescing } of made.splice(0)) { coalescing.destroy(); awareness.destroy() } })

  it('sends the first change after a quiet spell at the end of its task, not an interval later', async () => {
    const { set, broadcasts, publishes } = setUp(60_000)
    set(7, 1)
    set(8, 1)
    assert.equal(broadcasts.length, 0)
    await endOfTask()
    assert.deepEqual(broadcasts.map((b) => b.entries.map(([client]) => client)), [[7, 8]])
    assert.equal(publishes.length, 1)
  })

  it('merges the changes of one interval into one frame, each state at its latest, no sooner than the interval', async () => {
    const intervalMs = 40
    const { set, broadcasts } = setUp(intervalMs)
    set(7, 1)
    await endOfTask()
    for (let clock = 2; clock <= 5; clock++) set(7, clock)
    set(8, 1)
    await endOfTask()
    assert.equal(broadcasts.length, 1, 'the later changes wait for the interval')
    await waitFor(() => broadcasts.length === 2, { message: 'the merged frame' })
    assert.deepEqual(broadcasts[1]!.entries.map(([client, clock]) => [client, clock]), [[7, 5], [8, 1]])
    assert.ok(broadcasts[1]!.at - broadcasts[0]!.at >= intervalMs, `frames ${broadcasts[1]!.at - broadcasts[0]!.at} ms apart`)
  })

  it('publishes only the changes made on this instance', async () => {
    const { set, broadcasts, publishes } = setUp(60_000)
    set(7, 1, false)
    set(8, 1, true)
    await endOfTask()
    assert.deepEqual(broadcasts[0]!.entries.map(([client]) => client), [7, 8])
    assert.deepEqual(publishes[0]!.entries.map(([client]) => client), [8])
  })
})
