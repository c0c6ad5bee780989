import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { describe, it } from 'node:test'

const root = new URL('../../../', import.meta.url)

/** The files of README's "Where things are" table; a bare name is in the folder of the cell's first file. */
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

describe('README "Where things are"', () => {
  it('names only files that exist, so that a rename updates it', () => {
    const files = tableFiles()
    assert.ok(files.length >= 40, `${files.length} files`)
    for (const file of files) assert.ok(existsSync(new URL(file, root)), `${file} is in README but not in the repository`)
  })
})
