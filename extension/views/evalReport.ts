/**
 * "Hogwild: Evaluate…": opens a report written by `npm run eval` (eval.json, with eval.svg
 * beside it) in a webview: the accuracy-against-steps plot and the summary table. No
 * scripts run in it; the plot is shown as an image.
 */
import * as vscode from 'vscode';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { layoutName, pct, type GroupSummary } from '../eval/report';
import { escapeHtml } from './html';

/** What the page shows of each group of eval.json (written by summarize). */
type Group = Pick<GroupSummary, 'layout' | 'workers' | 'runs' | 'accuracy' | 'medianCorrectStep' | 'stepsToReference' | 'ratio' | 'duplicationRate'>;

/** The report page of an eval.json (throws a clear error for a file that is not one). */
export function evalReportHtml(jsonFile: string): string {
  let report: { model?: string; problems?: number; groups?: Group[] };
  try {
    report = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  } catch (err) {
    throw new Error(`${jsonFile}: not a readable evaluation report: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(report.groups)) throw new Error(`${jsonFile}: no "groups" (write it with npm run eval)`);
  const svgFile = path.join(path.dirname(jsonFile), 'eval.svg');
  const svg = fs.existsSync(svgFile) ? fs.readFileSync(svgFile) : null;
  const nonce = randomBytes(16).toString('base64');
  const rows = report.groups
    .map((g) => `<tr><td>${escapeHtml(layoutName(g.layout))}</td><td>${g.workers}</td><td>${g.runs}</td><td>${pct(g.accuracy)}</td><td>${g.medianCorrectStep ?? '-'}</td><td>${g.stepsToReference ?? 'not reached'}</td><td>${g.ratio !== null ? g.ratio.toFixed(2) : '-'}</td><td>${pct(g.duplicationRate)}</td></tr>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'nonce-${nonce}'">
<style nonce="${nonce}">
body { color: var(--vscode-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-font-family); padding: 12px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid var(--vscode-panel-border); padding: 4px 8px; text-align: right; }
th { text-align: center; }
img { max-width: 100%; background: white; }
</style><title>Hogwild evaluation</title></head>
<body>
<h2>Accuracy against sequential steps</h2>
<p>${escapeHtml(report.model ?? '')} — ${report.problems ?? '?'} problems (${escapeHtml(jsonFile)})</p>
${svg ? `<img alt="accuracy against sequential forward steps" src="data:image/svg+xml;base64,${svg.toString('base64')}">` : '<p>(no eval.svg beside the report)</p>'}
<table><thead><tr><th>layout</th><th>W</th><th>runs</th><th>accuracy</th><th>median steps to a right answer</th><th>steps to reach W=1 accuracy</th><th>× W=1 steps</th><th>runs with a duplicated part</th></tr></thead>
<tbody>${rows}</tbody></table>
</body></html>`;
}

/** Opens `file` (or asks for one; default the workspace's eval-out/eval.json) in a report panel. */
export async function openEvalReport(file?: string): Promise<vscode.WebviewPanel | undefined> {
  let target = file;
  if (!target) {
    const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const guess = ws ? path.join(ws, 'eval-out', 'eval.json') : undefined;
    const picked = await vscode.window.showOpenDialog({
      title: 'Hogwild: Evaluate… — open a report of npm run eval (eval.json)',
      defaultUri: guess && fs.existsSync(guess) ? vscode.Uri.file(guess) : undefined,
      canSelectMany: false,
      filters: { 'Evaluation report': ['json'] },
    });
    if (!picked || picked.length === 0) {
      void vscode.window.showInformationMessage('Hogwild: write a report with "npm run eval" (accuracy against sequential steps, W = 1 against W = N), then open its eval.json here.');
      return undefined;
    }
    target = picked[0].fsPath;
  }
  const html = evalReportHtml(target);
  const panel = vscode.window.createWebviewPanel('hogwild.evalReport', 'Hogwild Evaluation', vscode.ViewColumn.Active, { enableScripts: false });
  panel.webview.html = html;
  return panel;
}
