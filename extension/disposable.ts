/**
 * The base of every provider, panel and manager (after vscode-hexeditor's Disposable): what an
 * object creates or subscribes to is `_register`ed once, and `dispose()` releases all of it,
 * newest first, exactly once. No vscode import: a vscode.Disposable fits `IDisposable`.
 */
export interface IDisposable {
  dispose(): unknown;
}

/** A disposable that runs `f` (timers, intervals, anything without its own dispose). */
export function toDisposable(f: () => void): IDisposable {
  return { dispose: f };
}

export abstract class Disposable implements IDisposable {
  private readonly _disposables: IDisposable[] = [];
  private _isDisposed = false;

  protected get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Keeps `d` until this object is disposed; registered after that, it is disposed at once. */
  protected _register<T extends IDisposable>(d: T): T {
    if (this._isDisposed) d.dispose();
    else this._disposables.push(d);
    return d;
  }

  dispose(): void {
    if (this._isDisposed) return;
    this._isDisposed = true;
    const errors: unknown[] = [];
    for (const d of this._disposables.splice(0).reverse()) {
      try {
        d.dispose();
      } catch (e) {
        errors.push(e); // one failing dispose must not keep the others alive
      }
    }
    if (errors.length > 0) console.error('[hogwild] dispose failed', errors);
  }
}
