/**
 * The `swarmpack` command: argument parsing (commander) and the frame every command runs in
 * (output mode, the node's lifetime, errors to exit codes, signals). The commands themselves live
 * in ./commands and each is a thin layer over the `swarmpack` node.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { Context, CliError, type GlobalOptions } from './context.js'
import { ExitCode } from './exit-codes.js'
import { Output, type OutputMode, type Streams } from './output.js'

// commands load the node (libp2p and all) when they run, not for --help or a usage error
const setup = async (): Promise<typeof import('./commands/setup.js')> => import('./commands/setup.js')
const publishing = async (): Promise<typeof import('./commands/publishing.js')> => import('./commands/publishing.js')
const deploy = async (): Promise<typeof import('./commands/deploy.js')> => import('./commands/deploy.js')
const ops = async (): Promise<typeof import('./commands/ops.js')> => import('./commands/ops.js')
const catalog = async (): Promise<typeof import('./commands/catalog.js')> => import('./commands/catalog.js')
const serving = async (): Promise<typeof import('./commands/serve.js')> => import('./commands/serve.js')

// src/main.ts or dist/src/main.js: the package.json is one or two levels up
const VERSION = (JSON.parse(readFileSync(new URL(import.meta.url.includes('/dist/src/') ? '../../package.json' : '../package.json', import.meta.url), 'utf8')) as { version: string }).version

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

function modeOf (globals: GlobalOptions & { jsonStream?: boolean }): OutputMode {
  if (globals.jsonStream === true) return 'stream'
  return globals.json === true ? 'json' : 'human'
}

/**
 * `--json=stream` becomes the hidden flag `--json-stream`, so `--json` stays a plain flag (an
 * optional value would swallow the next argument: `install --json a@1`).
 */
function normalizeArgs (argv: string[]): string[] {
  return argv.map(a => a === '--json=stream' ? '--json-stream' : a === '--json=json' || a === '--json=true' ? '--json' : a)
}

function rawMode (argv: string[]): OutputMode {
  const j = argv.find(a => a === '--json' || a.startsWith('--json='))
  if (j === undefined) return 'human'
  return j === '--json=stream' ? 'stream' : 'json'
}

type Action = (ctx: Context, signal: AbortSignal) => Promise<unknown>

export interface MainOptions {
  streams?: Streams
  /** Exit code handler (default: sets it on the process). */
  signals?: boolean
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main (argv: string[], options: MainOptions = {}): Promise<number> {
  const streams: Streams = options.streams ?? { stdout: process.stdout, stderr: process.stderr }
  let exitCode = 0
  let ran = false
  const controller = new AbortController()
  let interrupted = 0
  const onSignal = (): void => {
    interrupted++
    if (interrupted > 1) process.exit(ExitCode.INTERRUPTED)
    controller.abort(new CliError('ERR_ABORTED', 'interrupted'))
  }
  if (options.signals !== false) {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }

  const run = (command: Command, name: string, action: Action): Promise<void> => {
    ran = true
    return (async () => {
      const globals = command.optsWithGlobals<GlobalOptions>()
      let out: Output
      try {
        out = new Output(modeOf(globals), streams, name, globals.quiet === true)
      } catch (err) {
        exitCode = new Output(rawMode(argv), streams, name).error(err)
        return
      }
      const ctx = new Context(globals, out)
      ctx.signal = controller.signal
      // long-running commands stop gracefully on the first signal; the others stop the node and exit
      const interruptible = new Promise<never>((_resolve, reject) => {
        controller.signal.addEventListener('abort', () => { reject(controller.signal.reason) }, { once: true })
      })
      interruptible.catch(() => {})
      try {
        const long = name === 'serve' || (name === 'update' && (command.opts() as { watch?: boolean }).watch === true)
        const result = long ? await action(ctx, controller.signal) : await Promise.race([action(ctx, controller.signal), interruptible])
        await ctx.close()
        out.result(result)
        exitCode = 0
      } catch (err) {
        ctx.view.stop()
        await ctx.close().catch(() => {})
        exitCode = out.error(err)
      }
    })()
  }

  const program = new Command()
  program
    .name('swarmpack')
    .description('peer-to-peer package manager: publish, follow indexers, install, update and serve packages')
    // no program-level --version option: commander would take `publish --version 1.0.0` for it
    .addHelpText('after', '\nswarmpack -V prints the version. Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 trust refused, 5 conflict, 6 network, 7 I/O, 130 interrupted.')
    .option('-c, --config <file>', 'deployment config (default ./swarmpack.json, or $SWARMPACK_CONFIG)')
    .option('-d, --data-dir <dir>', 'data dir: store, keys, generations (default .swarmpack beside the config, or $SWARMPACK_DATA_DIR)')
    .option('--json', 'machine output on stdout: one JSON document (--json=stream: NDJSON events, then the result)')
    .addOption(new Option('--json-stream').hideHelp())
    .option('-q, --quiet', 'no progress or log lines on stderr')
    .option('--host <module>', 'JS module exporting load/unload hooks, called as generations switch (or $SWARMPACK_HOST)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: s => { streams.stdout.write(s) },
      writeErr: s => { if (rawMode(argv) === 'human') streams.stderr.write(s) },
      outputError: () => {}
    })

  program.command('init').description('write a commented starter deployment config')
    .option('-f, --force', 'overwrite an existing config')
    .addOption(new Option('--sharing <mode>', 'sharing mode to start with').choices(['off', 'consume', 'share', 'mirror']))
    .action(async (o, cmd: Command) => run(cmd, 'init', async ctx => (await setup()).init(ctx, o)))

  const keys = program.command('keys').description('signing keys in the data dir')
  keys.command('generate').argument('[name]', 'key name', 'default').description('create an ed25519 signing key')
    .option('-f, --force', 'replace an existing key of that name')
    .action(async (name: string, o, cmd: Command) => run(cmd, 'keys generate', async ctx => (await setup()).keysGenerate(ctx, name, o)))
  keys.command('show').argument('[name]', 'key name', 'default').description('show a key id and file')
    .action(async (name: string, _o, cmd: Command) => run(cmd, 'keys show', async ctx => (await setup()).keysShow(ctx, name)))
  keys.command('export').argument('[name]', 'key name', 'default').description('print the public key id (what followers configure)')
    .action(async (name: string, _o, cmd: Command) => run(cmd, 'keys export', async ctx => (await setup()).keysExport(ctx, name)))
  keys.command('list').description('list the keys')
    .action(async (_o, cmd: Command) => run(cmd, 'keys list', async ctx => (await setup()).keysList(ctx)))

  const indexerOptions = (c: Command): Command => c
    .option('--indexer <id>', 'indexer id', 'main')
    .option('--indexer-key <name>', 'key that signs the index', 'default')
    .option('--mirror-dir <dir>', 'static mirror the indexer writes (default <data-dir>/mirror)')

  indexerOptions(program.command('publish').argument('<dir>', 'package directory').description('pack a directory, sign the release, list it in the index and publish the next index version')
    .option('--key <name>', 'publisher key', 'default')
    .option('--name <name>', 'package name (else from swarmpack-package.json)')
    .option('--version <version>', 'package version (else from swarmpack-package.json)')
    .option('--description <text>')
    .option('--entry <path>', 'entry point inside the package')
    .option('--dep <name@range>', 'dependency (repeatable)', collect)
    .option('--tag <tag>', 'tag (repeatable)', collect)
    .option('--category <category>', 'category (repeatable)', collect)
    .option('--platform <platform>', 'platform of this build (default any)')
    .option('--variant <variant>', 'build variant key')
    .option('--no-index', 'sign the release only; do not list it'))
    .action(async (dir: string, o, cmd: Command) => run(cmd, 'publish', async ctx => (await publishing()).publishCmd(ctx, dir, o)))

  const index = program.command('index').description('the indexer this data dir runs')
  indexerOptions(index.command('add').argument('<release...>', 'release CIDs or release files').description('list releases and publish the next index version')
    .option('--no-publish', 'list only; publish later with `index publish`'))
    .action(async (releases: string[], o, cmd: Command) => run(cmd, 'index add', async ctx => (await publishing()).indexAdd(ctx, releases, o)))
  indexerOptions(index.command('publish').description('sign and publish the next index version (DHT and mirror)'))
    .action(async (o, cmd: Command) => run(cmd, 'index publish', async ctx => (await publishing()).indexPublish(ctx, o)))
  indexerOptions(index.command('list').description('entries of the next index version'))
    .action(async (o, cmd: Command) => run(cmd, 'index list', async ctx => (await publishing()).indexList(ctx, o)))
  indexerOptions(index.command('remove').argument('<name@version>').description('withdraw a release (kept as a tombstone) and publish')
    .option('--reason <text>', 'why (followers see it)')
    .option('--no-publish', 'publish later'))
    .action(async (spec: string, o, cmd: Command) => run(cmd, 'index remove', async ctx => (await publishing()).indexRemove(ctx, spec, o)))

  program.command('attest').argument('<release>', 'release CID or file').description('sign attestations that you checked a release')
    .option('--key <name>', 'attester key', 'default')
    .addOption(new Option('--kind <kind>', 'what was checked').choices(['rebuilt', 'mirror-matched']).default('rebuilt'))
    .option('--out <dir>', 'also write each attestation as <cid>.attestation here')
    .action(async (release: string, o, cmd: Command) => run(cmd, 'attest', async ctx => (await publishing()).attestCmd(ctx, release, o)))

  program.command('follow').argument('<source>', 'mirror URL or directory carrying an indexer card, or an indexer id with --key')
    .description('follow an indexer: add it to the config and read its newest signed head')
    .option('--key <id>', 'the indexer key you expect (checked against the card; required with an indexer id)', collect)
    .option('--id <indexer>', 'indexer id (override the card)')
    .option('--mirror <url>', 'mirror with its head and blocks (repeatable)', collect)
    .option('--dir <path>', 'mirror directory (repeatable)', collect)
    .option('--publisher-root <id>', 'publisher root key to trust for every name (repeatable)', collect)
    .option('--peer <multiaddr>', 'bootstrap peer (repeatable)', collect)
    .option('--no-follow', 'only edit the config')
    .action(async (source: string, o, cmd: Command) => run(cmd, 'follow', async ctx => (await deploy()).followCmd(ctx, source, o)))

  program.command('resolve').description('resolve the wanted modules and print the plan; writes nothing unless --write')
    .option('-w, --write [file]', 'write the lockfile (default swarmpack.lock beside the config)')
    .option('-u, --update [names...]', 'move these packages (or all) to the newest versions in range')
    .option('--no-follow', 'resolve against the heads accepted before')
    .action(async (o, cmd: Command) => run(cmd, 'resolve', async ctx => (await deploy()).resolveCmd(ctx, o)))

  program.command('install').alias('apply').argument('[specs...]', 'name@range to add to the deployment').description('install packages (or, without names, make the installed set match the config or --frozen lockfile)')
    .option('--frozen', 'install exactly the lockfile; fail if the config changed since it was written')
    .option('--lock <file>', 'lockfile for --frozen (default swarmpack.lock beside the config)')
    .option('-n, --dry-run', 'print the plan, change nothing')
    .option('--no-follow', 'do not look for newer index heads first')
    .action(async (specs: string[], o, cmd: Command) => run(cmd, 'install', async ctx => (await deploy()).installCmd(ctx, specs, o)))

  program.command('uninstall').argument('<names...>').description('remove packages from the deployment (and what only they needed)')
    .option('-n, --dry-run', 'print the plan, change nothing')
    .action(async (names: string[], o, cmd: Command) => run(cmd, 'uninstall', async ctx => (await deploy()).uninstallCmd(ctx, names, o)))

  program.command('update').argument('[names...]', 'packages to update (default all)').description('follow the indexes and update within the configured ranges')
    .option('-n, --dry-run', 'print the plan, change nothing')
    .option('--watch', 'keep watching and apply updates as they appear (with --dry-run: only report them)')
    .option('--interval <seconds>', 'with --watch: time between checks', '300')
    .action(async (names: string[], o, cmd: Command) => run(cmd, 'update', async (ctx, signal) => (await deploy()).updateCmd(ctx, names, o, signal)))

  program.command('search').argument('[text]', 'words in names and descriptions').description('search the followed indexes')
    .option('--category <category>')
    .option('--tag <tag>')
    .option('--limit <n>', 'most results', '50')
    .action(async (text: string | undefined, o, cmd: Command) => run(cmd, 'search', async ctx => (await catalog()).searchCmd(ctx, text, o)))
  program.command('info').argument('<name>').description('versions, variants, sizes, categories and tags of a package')
    .action(async (name: string, _o, cmd: Command) => run(cmd, 'info', async ctx => (await catalog()).infoCmd(ctx, name)))

  program.command('rollback').argument('[generation]', 'generation number (default: the one before the current)').description('switch back to an earlier generation')
    .action(async (g: string | undefined, _o, cmd: Command) => run(cmd, 'rollback', async ctx => (await deploy()).rollbackCmd(ctx, g)))
  program.command('generations').description('list the generations')
    .action(async (_o, cmd: Command) => run(cmd, 'generations', async ctx => (await deploy()).generationsCmd(ctx)))
  program.command('list').description('list the installed packages')
    .action(async (_o, cmd: Command) => run(cmd, 'list', async ctx => (await deploy()).listCmd(ctx)))

  indexerOptions(program.command('serve').description('run a long-lived peer: share (or mirror), optionally serve the mirror directory and a gateway over HTTP')
    .addOption(new Option('--mode <mode>', 'sharing mode for this run').choices(['consume', 'share', 'mirror']))
    .option('--listen <multiaddr>', 'listen address (repeatable)', collect)
    .option('--http <port>', 'serve the mirror directory over HTTP on this port (0: any)')
    .option('--http-host <host>', 'address for --http', '127.0.0.1')
    .option('--gateway', 'with --http: also serve the block store as an IPFS trustless gateway at /ipfs/')
    .option('--key <name>', 'publisher key named in the indexer card', 'default')
    .option('--republish-every <seconds>', 'put the index head into the DHT again this often', '3600'))
    .action(async (o, cmd: Command) => run(cmd, 'serve', async (ctx, signal) => (await serving()).serveCmd(ctx, o, signal)))

  const mirror = program.command('mirror').description('static mirrors')
  mirror.command('export').argument('<dir>').description('write a static mirror of what this node holds (any web server can serve it)')
    .option('--root <cid>', 'export only these roots (repeatable)', collect)
    .action(async (dir: string, o, cmd: Command) => run(cmd, 'mirror export', async ctx => (await ops()).mirrorExportCmd(ctx, dir, o)))

  program.command('gc').description('remove old generations, unused package directories and unpinned blocks')
    .option('-n, --dry-run', 'say what would go, remove nothing')
    .option('--keep <n>', 'generations to keep, the current one included')
    .action(async (o, cmd: Command) => run(cmd, 'gc', async ctx => (await ops()).gcCmd(ctx, o)))
  program.command('verify').description('re-hash the store (corrupt blocks are removed and fetched again) and check the installed files against their manifests')
    .option('--repair', 'also restore changed or deleted installed files from the store')
    .option('--rate <MiB/s>', 'read at most this many MiB per second (default: the config\'s scrub.rateBytesPerSec)')
    .action(async (o, cmd: Command) => run(cmd, 'verify', async ctx => (await ops()).scrubCmd(ctx, o, true)))
  program.command('scrub').description('verify, restore changed files (per the config) and check the installed releases against the followed indexes')
    .option('--no-indexes', 'skip the check against the followed indexes')
    .option('--rate <MiB/s>', 'read at most this many MiB per second')
    .action(async (o, cmd: Command) => run(cmd, 'scrub', async ctx => (await ops()).scrubCmd(ctx, o, false)))
  program.command('status').description('peer, followed indexes and where their heads came from, packages and their fetch sources, cache, updates, recent errors')
    .option('--network', 'also start the peer and report connections')
    .action(async (o, cmd: Command) => run(cmd, 'status', async ctx => (await ops()).statusCmd(ctx, o)))
  program.command('doctor').description('check the store, mirrors, index heads, clock, listen addresses, DHT and upkeep; each problem with a fix')
    .option('--timeout <seconds>', 'bound on each network check', '5')
    .action(async (o, cmd: Command) => run(cmd, 'doctor', async ctx => (await ops()).doctorCmd(ctx, o)))

  if (argv.length === 1 && (argv[0] === '-V' || argv[0] === '--version')) {
    streams.stdout.write(VERSION + '\n')
    return 0
  }
  try {
    await program.parseAsync(normalizeArgs(argv), { from: 'user' })
    if (!ran) {
      program.outputHelp()
      exitCode = argv.length === 0 ? ExitCode.USAGE : 0
    }
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') exitCode = 0
      else exitCode = new Output(rawMode(argv), streams, argv.find(a => !a.startsWith('-')) ?? 'swarmpack').error(new CliError('ERR_USAGE', err.message.replace(/^error: /, '')))
    } else {
      exitCode = new Output(rawMode(argv), streams, 'swarmpack').error(err)
    }
  } finally {
    if (options.signals !== false) {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }
  return exitCode
}
