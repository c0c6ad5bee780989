import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, sep } from 'node:path'
import { describe, it } from 'node:test'

const root = new URL('../../../', import.meta.url)

/** The files of README's "Where things are" tables; a bare name is in the folder of the cell's first file. */
const tableFiles = (): string[] => {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  const section = readme.slice(readme.indexOf('## Where things are'))
  const rows = section.slice(0, section.indexOf('\n## ')).split('\n').filter((line) => line.startsWith('| `'))
  return rows.flatMap((row) => {
    const names = [...row.split('|')[1]!.matchAll(/`([^`]+)`/g)].map((match) => match[1]!)
    const folder = dirname(names[0]!)
    return names.map((name) => name.includes('/') ? name : `${folder}/${name}`)
  })
}

/** Every TypeScript file under `folder` (server/, web/), as a path from the repository's root. */
const sourceFiles = (folder: string): string[] =>
  readdirSync(new URL(`${folder}/`, root), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => `${folder}/${file.split(sep).join('/')}`)

describe('README "Where things are"', () => {
  it('names only files that exist, so that a rename updates it', () => {
    const files = tableFiles()
    assert.ok(files.length >= 40, `${files.length} files`)
    for (const file of files) assert.ok(existsSync(new URL(file, root)), `${file} is in README but not in the repository`)
  })

  it('names every file of server/ and web/, so that a new file gets its line', () => {
    const listed = new Set(tableFiles())
    const missing = [...sourceFiles('server'), ...sourceFiles('web')].filter((file) => !listed.has(file)).sort()
    assert.deepEqual(missing, [], `files missing from README's "Where things are": ${missing.join(', ')}`)
  })
})
