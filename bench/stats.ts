/** Small statistics and the result table. */
export const quantile = (values: ArrayLike<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export const median = (values: readonly number[]): number => quantile(values, 0.5)

export const max = (values: ArrayLike<number>): number => {
  let result = Number.NEGATIVE_INFINITY
  for (let i = 0; i < values.length; i++) if (values[i]! > result) result = values[i]!
  return result
}

/** One measured figure: its value per server (median over repeats), NaN where it failed. */
export interface Row {
  readonly scenario: string
  readonly metric: string
  /** Lower is better unless `higherIsBetter`. */
  readonly higherIsBetter?: boolean
  readonly unit: string
  readonly values: ReadonlyMap<string, number>
  /** Free text: failures, convergence. */
  readonly note?: string
}

const format = (value: number | undefined): string => {
  if (value === undefined) return ''
  if (Number.isNaN(value)) return 'FAIL'
  if (Math.abs(value) >= 100) return value.toFixed(0)
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

/** A Markdown table: one column per server, then the project's ratio to each peer. */
export const table = (rows: readonly Row[], servers: readonly string[]): string => {
  const peers = servers.filter((s) => s !== 'project' && s !== 'project-memory')
  const head = ['scenario', 'metric', ...servers, ...peers.map((p) => `project / ${p}`), 'note']
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`]
  for (const row of rows) {
    const ours = row.values.get('project')
    const ratios = peers.map((peer) => {
      const theirs = row.values.get(peer)
      if (ours === undefined || theirs === undefined || !Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return ''
      return `${(ours / theirs).toFixed(2)}×`
    })
    lines.push(`| ${[row.scenario, `${row.metric} (${row.unit})`, ...servers.map((s) => format(row.values.get(s))), ...ratios, row.note ?? ''].join(' | ')} |`)
  }
  return lines.join('\n')
}
