import type { Storage } from '../../server/storage/storage.js'

/** `inner` with some of its methods replaced: a storage that fails, waits or counts where a test needs it. */
export const storageWith = (inner: Storage, overrides: Partial<Storage>): Storage => ({
  load: (room, after) => inner.load(room, after),
  append: (entries) => inner.append(entries),
  compact: (room) => inner.compact(room),
  has: (room) => inner.has(room),
  check: () => inner.check(),
  close: () => inner.close(),
  ...(inner.heads === undefined ? {} : { heads: (rooms: readonly string[]) => inner.heads!(rooms) }),
  ...overrides,
})
