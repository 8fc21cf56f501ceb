/** Small DOM helpers. Text always goes in through textContent, never as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** A custom element (the vscode-elements controls) with attributes. */
export function ce(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: (Node | string)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) el.append(c);
  return el;
}

export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function fmtRate(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

/**
 * Attribute writes only when the value changes: a custom element's attributeChangedCallback
 * (the vscode-elements controls) runs on every setAttribute, and these run every frame.
 */
export function setDisabled(el: HTMLElement, disabled: boolean): void {
  if (disabled === el.hasAttribute('disabled')) return;
  if (disabled) el.setAttribute('disabled', '');
  else el.removeAttribute('disabled');
}

export function setData(el: HTMLElement, key: string, value: string): void {
  if (el.dataset[key] !== value) el.dataset[key] = value;
}

/** An inline style property, written only when it changes (through the CSSOM: the CSP blocks style attributes). */
export function setStyle(el: HTMLElement, prop: 'width' | 'height' | 'left' | 'top', value: string): void {
  if (el.style[prop] !== value) el.style[prop] = value;
}
