/** Runs a Python client script from test/ with Debian's interpreter (where python3-psycopg2/psycopg are installed). */
import { execFile } from 'node:child_process';

// Debian's interpreter: a pyenv shim or venv earlier on PATH may lack the Debian client libraries.
const PYTHON = process.env.PGC_PYTHON ?? '/usr/bin/python3';

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runPython(script: string, args: string[], timeoutMs: number): Promise<ScriptResult> {
  return new Promise((resolve) => {
    execFile(PYTHON, [script, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
