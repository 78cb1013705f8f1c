/**
 * Explains a failed resolution in PubGrub's derivation-tree style: one sentence per derived fact,
 * each built from the two facts it came from; facts used more than once get a number and are
 * referred to by it; the last line is the conflict with the root. Also returns the graph behind the
 * text, for host applications that want their own wording.
 */
import type { Incompatibility, Unavailable } from './incompatibility.js'
import type { Term } from './term.js'
import type { VersionSet } from './version-set.js'
import type { PackageEntry } from './metadata.js'
import { type Version, isPrerelease } from './version.js'

export interface ReportContext {
  rootName: string
  rootVersion: Version
  /** The listing of a package if known, to say "every version of x" when a set covers them all. */
  listing: (name: string) => PackageEntry | undefined
}

export interface DerivationTerm {
  name: string
  /** false: the fact says the package is NOT selected within `range`. */
  positive: boolean
  range: string
}

/** One node of the derivation graph: a fact (incompatibility) and why it holds. */
export interface DerivationNode {
  id: number
  /** The fact in plain words, as it appears in the explanation. */
  text: string
  /** The terms that can never all hold together. */
  terms: DerivationTerm[]
  /** `derived` facts have two causes; the others are external facts from root, metadata, policy. */
  cause: 'root' | 'dependency' | 'no-versions' | 'unavailable' | 'derived'
  /** For `dependency`: who depends on what. */
  dependency?: { depender: string, dependerRange: string, name: string, range: string }
  /** For `unavailable` and `no-versions`: the package and why versions could not be used. */
  unavailable?: Array<{ name: string, version?: string, reason: Unavailable }>
  causes?: [DerivationNode, DerivationNode]
}

export interface FailureReport {
  /** The explanation as one text, lines joined with newlines. */
  explanation: string
  lines: string[]
  /** The root of the derivation graph: the incompatibility that made resolution fail. */
  derivation: DerivationNode
}

export function explainFailure (failure: Incompatibility, ctx: ReportContext): FailureReport {
  const writer = new Writer(failure, ctx)
  return writer.run()
}

interface Line { text: string, number?: number }
/** A fact to explain, or a line to write once the facts before it are explained. */
type Task = { inc: Incompatibility, conclusion: boolean } | (() => void)

class Writer {
  private readonly failure: Incompatibility
  private readonly ctx: ReportContext
  private readonly refs = new Map<Incompatibility, number>()
  private readonly numbers = new Map<Incompatibility, number>()
  private readonly lines: Line[] = []

  constructor (failure: Incompatibility, ctx: ReportContext) {
    this.failure = failure
    this.ctx = ctx
  }

  run (): FailureReport {
    this.countRefs(this.failure)
    if (this.failure.cause.kind === 'derived') {
      this.visit(this.failure)
    } else {
      this.lines.push({ text: `Because ${this.describe(this.failure)}, version solving failed.` })
    }
    const width = this.numbers.size === 0 ? 0 : `(${this.numbers.size}) `.length
    const lines = this.lines.map(l => l.number === undefined ? (l.text === '' ? '' : ' '.repeat(width) + l.text) : `(${l.number}) `.padEnd(width) + l.text)
    return { explanation: lines.join('\n'), lines, derivation: this.node(this.failure) }
  }

  /** How often each fact is used as a cause (a stack, not recursion: chains can be 100,000 deep). */
  private countRefs (failure: Incompatibility): void {
    const stack = [failure]
    while (stack.length > 0) {
      const inc = stack.pop() as Incompatibility
      const seen = this.refs.get(inc)
      this.refs.set(inc, (seen ?? 0) + 1)
      if (seen !== undefined || inc.cause.kind !== 'derived') continue
      stack.push(inc.cause.right, inc.cause.left)
    }
  }

  private write (inc: Incompatibility, text: string, numbered: boolean): void {
    if (numbered && !this.numbers.has(inc)) {
      const number = this.numbers.size + 1
      this.numbers.set(inc, number)
      this.lines.push({ text, number })
    } else {
      this.lines.push({ text })
    }
  }

  /**
   * Writes the lines for `inc` after those of its causes. The walk is depth-first like pub's, but
   * driven by an explicit stack of tasks, so a derivation thousands of facts deep cannot overflow
   * the call stack: `visit` pushes "explain this cause" and "write this line" tasks in reverse order,
   * and the line's words are computed when its task runs (after its causes got their numbers).
   */
  private visit (root: Incompatibility, rootConclusion = false): void {
    const tasks: Task[] = [{ inc: root, conclusion: rootConclusion }]
    while (tasks.length > 0) {
      const task = tasks.pop() as Task
      if (typeof task === 'function') task()
      else this.step(task.inc, task.conclusion, tasks)
    }
  }

  /** One fact: plans the explanation of its causes and its own line onto `tasks` (run last first). */
  private step (inc: Incompatibility, conclusion: boolean, tasks: Task[]): void {
    if (inc.cause.kind !== 'derived') return
    // later tasks run first: push the line, then the causes in reverse order
    const plan = (...steps: Task[]): void => { for (let i = steps.length - 1; i >= 0; i--) tasks.push(steps[i]) }
    const visit = (x: Incompatibility, c = false): Task => ({ inc: x, conclusion: c })
    const numbered = conclusion || (this.refs.get(inc) ?? 0) > 1
    const lead = conclusion || inc === this.failure ? 'So, because' : 'And because'
    const text = (): string => this.describe(inc)
    const { left, right } = inc.cause
    if (left.isDerived && right.isDerived) {
      const nl = this.numbers.get(left); const nr = this.numbers.get(right)
      if (nl !== undefined && nr !== undefined) {
        this.write(inc, `Because ${this.describe(left)} (${nl}) and ${this.describe(right)} (${nr}), ${text()}.`, numbered)
      } else if (nl !== undefined || nr !== undefined) {
        const [withNumber, without] = nl !== undefined ? [left, right] : [right, left]
        plan(visit(without), () => this.write(inc, `${lead} ${this.describe(withNumber)} (${this.numbers.get(withNumber) as number}), ${text()}.`, numbered))
      } else {
        const simpleLeft = this.isSingleLine(left); const simpleRight = this.isSingleLine(right)
        if (simpleLeft || simpleRight) {
          const [first, second] = simpleRight ? [left, right] : [right, left]
          plan(visit(first), visit(second), () => this.write(inc, `Thus, ${text()}.`, numbered))
        } else {
          plan(visit(left, true), () => this.lines.push({ text: '' }), visit(right), () => {
            const n = this.numbers.get(left)
            this.write(inc, `${lead} ${this.describe(left)}${n === undefined ? '' : ` (${n})`}, ${text()}.`, numbered)
          })
        }
      }
    } else if (left.isDerived || right.isDerived) {
      const [derived, external] = left.isDerived ? [left, right] : [right, left]
      const n = this.numbers.get(derived)
      if (n !== undefined) {
        this.write(inc, `Because ${this.describe(external)} and ${this.describe(derived)} (${n}), ${text()}.`, numbered)
      } else if (this.isCollapsible(derived)) {
        const c = derived.cause as { left: Incompatibility, right: Incompatibility }
        const [inner, innerExternal] = c.left.isDerived ? [c.left, c.right] : [c.right, c.left]
        plan(visit(inner), () => this.write(inc, `${lead} ${this.describeBoth(innerExternal, external)}, ${text()}.`, numbered))
      } else {
        plan(visit(derived), () => this.write(inc, `${lead} ${this.describe(external)}, ${text()}.`, numbered))
      }
    } else {
      this.write(inc, `Because ${this.describeBoth(left, right)}, ${text()}.`, numbered)
    }
  }

  /** Both causes are external: the fact fits one sentence. */
  private isSingleLine (inc: Incompatibility): boolean {
    return inc.cause.kind === 'derived' && !inc.cause.left.isDerived && !inc.cause.right.isDerived
  }

  /** One derived and one external cause, used once: its sentence can be folded into the next. */
  private isCollapsible (inc: Incompatibility): boolean {
    if ((this.refs.get(inc) ?? 0) > 1 || inc.cause.kind !== 'derived') return false
    const { left, right } = inc.cause
    if (left.isDerived === right.isDerived) return false
    const inner = left.isDerived ? left : right
    return !this.numbers.has(inner)
  }

  // ---- wording ----

  /** "a depends on both b ^1.0.0 and c ^2.0.0" when two facts share their depender. */
  private describeBoth (a: Incompatibility, b: Incompatibility): string {
    const x = a.cause; const y = b.cause
    if (x.kind === 'dependency' && y.kind === 'dependency' && x.depender === y.depender && x.dependerSet.equals(y.dependerSet) && x.depender !== x.dependency && y.depender !== y.dependency) {
      const depender = x.depender === this.ctx.rootName ? x.depender : this.positive(x.depender, x.dependerSet, true)
      return `${depender} depends on both ${x.dependency} ${x.range} and ${y.dependency} ${y.range}`
    }
    return `${this.describe(a)} and ${this.describe(b)}`
  }

  private covers (name: string, set: VersionSet): boolean {
    const entry = this.ctx.listing(name)
    if (entry === undefined || entry.all.length === 0) return set.isAny()
    return entry.all.every(r => set.contains(r.version))
  }

  /**
   * A set as range text for people. The pre-release part is named only when the package lists a
   * pre-release in it: otherwise it cannot change the outcome and only makes the text harder to
   * read. A set that holds exactly one listed version shows it as listed (build metadata kept).
   */
  private setText (name: string, set: VersionSet): string {
    if (set.label !== undefined) return set.label
    const entry = this.ctx.listing(name)
    if (entry === undefined) return set.toString()
    if (set.single !== undefined) {
      const i = entry.byText.get(set.single.text)
      return i === undefined ? set.toString() : entry.all[i].listed
    }
    const listsPrerelease = entry.all.some(r => isPrerelease(r.version) && set.contains(r.version))
    return listsPrerelease ? set.toString() : set.releasesOnly().toString()
  }

  /**
   * A positive term in words. As a subject (`every`): "every version of a" when the set covers all
   * listed versions, "a 1.2.0" when it holds exactly one of them, else "a <range>". Elsewhere the
   * range is kept ("requires b ^2.0.0"), except for a set of every version ("b").
   */
  private positive (name: string, set: VersionSet, every: boolean): string {
    if (name === this.ctx.rootName) return name
    if (every) {
      if (this.covers(name, set)) return `every version of ${name}`
      const entry = this.ctx.listing(name)
      const inSet = entry === undefined ? [] : entry.all.filter(r => set.contains(r.version))
      if (inSet.length === 1) return `${name} ${inSet[0].listed}`
    }
    if (set.isAny()) return name
    return `${name} ${this.setText(name, set)}`
  }

  private term (t: Term, every: boolean): string {
    return this.positive(t.name, t.set, every)
  }

  describe (inc: Incompatibility): string {
    const c = inc.cause
    switch (c.kind) {
      case 'root':
        return `${this.ctx.rootName} is ${this.ctx.rootVersion.text}`
      case 'dependency': {
        const depender = c.depender === this.ctx.rootName ? this.ctx.rootName : this.positive(c.depender, c.dependerSet, true)
        if (c.depender === c.dependency) return `${depender} depends on ${c.dependency} ${c.range} (itself, in a range that excludes it)`
        return `${depender} depends on ${c.dependency} ${c.range}`
      }
      case 'no-versions': {
        const what = c.set.isAny() || this.covers(c.name, c.set) ? `no usable version of ${c.name} exists` : `no ${c.unavailable.length > 0 ? 'usable ' : ''}version of ${c.name} matches ${this.setText(c.name, c.set)}`
        if (c.unavailable.length === 0) return c.set.isAny() ? `${c.name} has no versions` : what
        const shown = c.unavailable.slice(0, 3).map(u => `${u.version} ${reasonText(u.reason)}`)
        if (c.unavailable.length > 3) shown.push(`${c.unavailable.length - 3} more are unavailable`)
        return `${what}: ${shown.join('; ')}`
      }
      case 'unavailable':
        return `${c.name}${c.version === undefined ? '' : ' ' + c.version} ${reasonText(c.reason)}`
      case 'derived':
        return this.describeDerived(inc)
    }
  }

  private describeDerived (inc: Incompatibility): string {
    const terms = inc.terms
    if (terms.length === 0) return 'version solving failed'
    if (terms.length === 1) {
      const t = terms[0]
      if (t.positive) return t.name === this.ctx.rootName ? 'version solving failed' : `${this.term(t, true)} is forbidden`
      return `${this.term(t.inverse(), false)} is required`
    }
    if (terms.length === 2) {
      const [a, b] = terms
      if (a.positive && b.positive) return `${this.term(a, true)} is incompatible with ${this.term(b, false)}`
      if (a.positive !== b.positive) {
        const [pos, neg] = a.positive ? [a, b] : [b, a]
        return `${this.term(pos, true)} requires ${this.term(neg.inverse(), false)}`
      }
      return `either ${this.term(a.inverse(), false)} or ${this.term(b.inverse(), false)} is required`
    }
    const pos = terms.filter(t => t.positive); const neg = terms.filter(t => !t.positive)
    if (neg.length === 0) return `${pos.map(t => this.term(t, false)).join(', ')} cannot all be selected together`
    if (pos.length === 0) return `one of ${neg.map(t => this.term(t.inverse(), false)).join(', ')} is required`
    const required = neg.map(t => this.term(t.inverse(), false)).join(' or ')
    if (pos.length === 1) return `${this.term(pos[0], true)} requires ${required}`
    return `${pos.map(t => this.term(t, false)).join(' and ')} together require ${required}`
  }

  /** The derivation graph as plain data; built bottom-up from a stack, like the other walks. */
  private node (failure: Incompatibility): DerivationNode {
    const done = new Map<Incompatibility, DerivationNode>()
    const stack = [failure]
    while (stack.length > 0) {
      const inc = stack[stack.length - 1]
      if (done.has(inc)) { stack.pop(); continue }
      const c = inc.cause
      if (c.kind === 'derived') {
        const missing = [c.right, c.left].filter(x => !done.has(x))
        if (missing.length > 0) { stack.push(...missing); continue }
      }
      stack.pop()
      const out: DerivationNode = {
        id: inc.id,
        text: this.describe(inc),
        terms: inc.terms.map(t => ({ name: t.name, positive: t.positive, range: t.set.toString() })),
        cause: c.kind
      }
      if (c.kind === 'dependency') out.dependency = { depender: c.depender, dependerRange: c.dependerSet.toString(), name: c.dependency, range: c.range }
      if (c.kind === 'unavailable') out.unavailable = [{ name: c.name, version: c.version, reason: c.reason }]
      if (c.kind === 'no-versions') out.unavailable = c.unavailable.map(u => ({ name: c.name, version: u.version, reason: u.reason }))
      if (c.kind === 'derived') out.causes = [done.get(c.left) as DerivationNode, done.get(c.right) as DerivationNode]
      done.set(inc, out)
    }
    return done.get(failure) as DerivationNode
  }
}

export function reasonText (r: Unavailable): string {
  const more = r.message === '' ? '' : ` (${r.message})`
  switch (r.kind) {
    case 'trust': return `is rejected by the trust policy${more}`
    case 'platform': return `has no variant for ${r.message === '' ? 'this platform' : r.message}`
    case 'not-found': return `does not exist${more}`
    case 'invalid': return `has invalid metadata${more}`
    default: return `is unavailable${more}`
  }
}
