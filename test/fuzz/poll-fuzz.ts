/**
 * The fuzzer's long-polling half: sends whose bodies hold many frames (hundreds to thousands), drawn from
 * the same corpus and mutations as the socket fuzzer, with runs of repeated sync step 1, query-awareness
 * and awareness frames, which are what made one small request cost the server a whole document per frame
 * (issue 24). Each answer's size is recorded: it must not grow with the number of frames. Seeded like
 * the rest, so a failure replays.
 */
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import * as protocol from '../../server/protocol.js'
import { decodeFrames, encodeFrames } from '../../server/transport/long-poll-wire.js'
import { buildCorpus, nextFrame } from './fuzz.js'

export interface PollFuzzOptions {
  /** `http://host:port` */
  readonly http: string
  readonly room: string
  readonly seed: number
  /** Sends to make. */
  readonly sends: number
  /** Most frames in one body. */
  readonly maxFrames?: number
}

export interface PollFuzzReport {
  readonly sends: number
  readonly frames: number
  /** Answers by HTTP status. */
  readonly statuses: Record<number, number>
  /** The largest answer body, and the most frames in one answer. */
  readonly largestAnswer: number
  readonly mostAnswerFrames: number
}

/** One body: mutated corpus frames, mixed with runs of one frame repeated. */
const body = (rng: prng.PRNG, corpus: readonly Uint8Array[], maxFrames: number): { bytes: Uint8Array, frames: number } => {
  const count = prng.int32(rng, 1, maxFrames)
  const repeated = [
    protocol.encodeSyncStep1(Y.encodeStateVector(new Y.Doc())),
    protocol.encodeQueryAwareness(),
    prng.oneOf(rng, corpus as Uint8Array[]),
  ]
  // Half the bodies carry recorded frames only: one mutated frame makes a whole body a 400, and the
  // answers worth measuring are those to bodies the server takes.
  const clean = prng.bool(rng)
  const frames: Uint8Array[] = []
  while (frames.length < count) {
    if (prng.bool(rng)) {
      const frame = prng.oneOf(rng, repeated)
      for (let n = prng.int32(rng, 1, 200); n > 0 && frames.length < count; n--) frames.push(frame)
    } else {
      // An empty frame is a format error of its own, which would end every body at its first one.
      const frame = clean ? prng.oneOf(rng, corpus as Uint8Array[]) : nextFrame(rng, corpus)
      frames.push(frame.length > 0 ? frame : protocol.encodeQueryAwareness())
    }
  }
  return { bytes: encodeFrames(frames), frames: frames.length }
}

export const runPollFuzz = async (options: PollFuzzOptions): Promise<PollFuzzReport> => {
  const rng = prng.create(options.seed)
  const corpus = buildCorpus(options.seed)
  const statuses: Record<number, number> = {}
  let frames = 0
  let largestAnswer = 0
  let mostAnswerFrames = 0
  for (let i = 0; i < options.sends; i++) {
    const { bytes, frames: sent } = body(rng, corpus, options.maxFrames ?? 2000)
    frames += sent
    const answer = await fetch(`${options.http}/poll/${options.room}?op=send`, { method: 'POST', body: bytes })
    const reply = new Uint8Array(await answer.arrayBuffer())
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
    largestAnswer = Math.max(largestAnswer, reply.length)
    if (answer.status === 200) mostAnswerFrames = Math.max(mostAnswerFrames, decodeFrames(reply).length)
  }
  return { sends: options.sends, frames, statuses, largestAnswer, mostAnswerFrames }
}
