/** Wall-clock time in ms with sub-ms resolution, comparable across the processes of one machine. */
export const now = (): number => performance.timeOrigin + performance.now()

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
