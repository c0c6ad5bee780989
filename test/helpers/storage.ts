import type { Storage } from '../../server/storage/storage.js'

/** `inner` with some of its methods replaced: a storage that fails, waits or counts where a test needs it. */
export const storageWith = (inner: Storage, overrides: Partial<Storage>): Storage => ({
  load: (room) => inner.load(room),
  append: (entries) => inner.append(entries),
  compact: (room) => inner.compact(room),
  has: (room) => inner.has(room),
  check: () => inner.check(),
  close: () => inner.close(),
  ...overrides,
})
