import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import semver from 'semver'
import { VersionSet } from '../src/pubgrub/version-set.js'
import { parseVersion, compareVersions, type Version } from '../src/pubgrub/version.js'

const v = (s: string): Version => {
  const out = parseVersion(s)
  if (out === undefined) throw new Error(`bad version ${s}`)
  return out
}
const set = (range: string, includePrerelease = false): VersionSet => {
  const out = VersionSet.fromRange(range, { includePrerelease })
  if (out === undefined) throw new Error(`bad range ${range}`)
  return out
}

// Small alphabets so random versions often land on the bounds of random ranges.
const num = fc.integer({ min: 0, max: 3 })
const preId = fc.constantFrom('alpha', 'beta', 'rc', '0', '1', '2', 'alpha.1', 'beta.0', '0.0')
const versionArb = fc.tuple(num, num, num, fc.option(preId, { nil: undefined }))
  .map(([a, b, c, p]) => `${a}.${b}.${c}${p === undefined ? '' : '-' + p}`)
const partial = fc.oneof(
  versionArb,
  fc.tuple(num, num).map(([a, b]) => `${a}.${b}`),
  num.map(a => `${a}`),
  fc.tuple(num, num).map(([a, b]) => `${a}.${b}.x`)
)
const comparator = fc.oneof(
  fc.tuple(fc.constantFrom('^', '~', '>=', '>', '<', '<=', '=', ''), partial).map(([op, x]) => op + x),
  fc.tuple(partial, partial).map(([a, b]) => `${a} - ${b}`),
  fc.constant('*')
)
const rangeArb = fc.array(fc.array(comparator, { minLength: 1, maxLength: 3 }).map(cs => cs.join(' ')), { minLength: 1, maxLength: 3 })
  .map(sets => sets.join(' || '))

describe('version order', () => {
  it('agrees with semver.compare', () => {
    fc.assert(fc.property(versionArb, versionArb, (a, b) => {
      assert.equal(compareVersions(v(a), v(b)), semver.compare(a, b))
    }), { numRuns: 2000 })
  })
  it('ignores build metadata', () => {
    assert.equal(compareVersions(v('1.2.3+abc'), v('1.2.3+def')), 0)
    assert.equal(v('1.2.3-rc.1+x').text, '1.2.3-rc.1')
    assert.equal(parseVersion('1.2'), undefined)
  })
})

describe('VersionSet.fromRange', () => {
  it('matches exactly what semver.satisfies matches, with and without includePrerelease', () => {
    fc.assert(fc.property(rangeArb, fc.array(versionArb, { minLength: 1, maxLength: 12 }), fc.boolean(), (range, versions, includePrerelease) => {
      const s = VersionSet.fromRange(range, { includePrerelease })
      if (s === undefined) return // not a valid range for semver either
      for (const x of versions) {
        assert.equal(s.contains(v(x)), semver.satisfies(x, range, { includePrerelease }), `${x} in ${range} (pre=${includePrerelease})`)
      }
    }), { numRuns: 3000 })
  })

  it('keeps npm pre-release rules', () => {
    const caret = set('^1.2.0-beta.1')
    assert.ok(caret.contains(v('1.2.0-beta.2')))
    assert.ok(caret.contains(v('1.5.0')))
    assert.ok(!caret.contains(v('1.3.0-beta.1')), 'pre-releases of other triples are excluded')
    assert.ok(!set('^1.0.0').contains(v('1.1.0-rc.1')))
    assert.ok(set('^1.0.0', true).contains(v('1.1.0-rc.1')))
    assert.ok(!set('^1.0.0', true).contains(v('2.0.0-rc.1')))
  })

  it('rejects invalid ranges', () => {
    assert.equal(VersionSet.fromRange('latest'), undefined)
    assert.equal(VersionSet.fromRange('>=1.0.0 <<2'), undefined)
  })
})

describe('set algebra', () => {
  const sample = ['0.0.0', '0.0.1-alpha', '0.1.0', '1.0.0-0', '1.0.0-beta', '1.0.0', '1.0.1', '1.2.0-rc.1', '1.2.0', '1.9.9', '2.0.0-alpha.1', '2.0.0', '2.3.4', '3.0.0-rc.1', '3.1.0'].map(v)
  const arbSet = fc.tuple(rangeArb, fc.boolean()).map(([r, p]) => VersionSet.fromRange(r, { includePrerelease: p })).filter((s): s is VersionSet => s !== undefined)

  it('intersect, union, complement and subset agree with membership', () => {
    fc.assert(fc.property(arbSet, arbSet, (a, b) => {
      const i = a.intersect(b); const u = a.union(b); const c = a.complement()
      for (const x of sample) {
        assert.equal(i.contains(x), a.contains(x) && b.contains(x))
        assert.equal(u.contains(x), a.contains(x) || b.contains(x))
        assert.equal(c.contains(x), !a.contains(x))
      }
      assert.ok(c.complement().equals(a), 'complement is an involution')
      assert.ok(i.subsetOf(a) && i.subsetOf(b) && a.subsetOf(u))
      assert.equal(a.subsetOf(b), a.difference(b).isEmpty())
      assert.equal(a.intersects(b), !i.isEmpty())
      assert.ok(a.union(c).isAny() && a.intersect(c).isEmpty())
    }), { numRuns: 1500 })
  })

  it('has one representation per set', () => {
    assert.ok(set('>=1.0.0 <2.0.0').equals(set('^1.0.0')))
    assert.ok(set('1.x || 2.x').equals(set('>=1.0.0 <3.0.0')))
    assert.ok(set('>1.2.3').equals(set('>=1.2.4')))
    assert.ok(set('<=1.2.3').equals(set('<1.2.4')))
    assert.ok(VersionSet.exact(v('1.2.3')).equals(set('1.2.3')))
  })

  it('counts and picks the newest among sorted versions', () => {
    const releases = ['1.0.0', '1.1.0', '1.2.0', '2.0.0'].map(v)
    const pres = ['1.2.0-rc.1', '2.0.0-rc.1'].map(v)
    assert.equal(set('^1.0.0').countIn(releases, pres), 3)
    assert.equal(set('^1.0.0').newestIn(releases, pres)?.text, '1.2.0')
    assert.equal(set('>=1.2.0-rc.1 <1.2.0').newestIn(releases, pres)?.text, '1.2.0-rc.1')
    assert.equal(set('^3.0.0').newestIn(releases, pres), undefined)
  })

  it('renders canonical text', () => {
    assert.equal(set('>=1.0.0').intersect(set('<2.0.0')).toString(), '^1.0.0')
    assert.equal(set('>=1.2.0 <1.3.0').union(set('>=1.2.0 <1.3.0')).toString(), '>=1.2.0 <1.3.0')
    assert.equal(set('^2.0.0').complement().intersect(set('>=1.0.0')).toString(), '^1.0.0 || >=3.0.0')
  })
})
