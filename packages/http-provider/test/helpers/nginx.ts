/**
 * Starts a private nginx (Debian's nginx-light) serving a mirror directory on a free 127.0.0.1
 * port, with its config, prefix, logs and pid file under a temp dir. Returns undefined when nginx
 * is not installed, so tests can skip with a clear message.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nginxMirrorConfig } from '../../src/mirror-export.js'

export const NGINX = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find(p => existsSync(p))

export interface TestNginx {
  url: string
  port: number
  close: () => Promise<void>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

export async function startNginx (root: string, extraServers = ''): Promise<TestNginx | undefined> {
  if (NGINX === undefined) return undefined
  const prefix = await mkdtemp(join(tmpdir(), 'swarmpack-nginx-'))
  const port = await freePort()
  const conf = `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${prefix}/body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
${nginxMirrorConfig({ root, listen: `127.0.0.1:${port}` })}
${extraServers}
}
`
  await writeFile(join(prefix, 'nginx.conf'), conf)
  const check = spawnSync(NGINX, ['-t', '-q', '-p', prefix, '-c', join(prefix, 'nginx.conf')], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`nginx config rejected: ${check.stderr}`)
  const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', d => { stderr += String(d) })
  const url = `http://127.0.0.1:${port}/`
  // Wait until it answers the probe.
  const deadline = Date.now() + 10_000
  while (true) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr} ${await readFile(join(prefix, 'error.log'), 'utf8').catch(() => '')}`)
    try {
      const res = await fetch(`${url}ipfs/bafkqaaa?format=raw`)
      await res.arrayBuffer()
      if (res.status === 200 || res.status === 404) break
    } catch {}
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('nginx did not start') }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    url,
    port,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 3000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      await rm(prefix, { recursive: true, force: true })
    }
  }
}
