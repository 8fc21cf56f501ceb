/**
 * Finds and loads the native addon. Only the engine process and the CLIs load it: a crash in
 * native code must never take the extension host down. Its types are declared beside the
 * binding (native/addon/hogwild_native.d.ts).
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import type { NativeAddon } from '../../native/addon/hogwild_native';

export type {
  NativeModelConfig,
  ForwardRow,
  SamplingParams,
  GenerateRequest,
  GenerateResult,
  NativeRunConfig,
  NativeEvent,
  NativeInspect,
  NativeRun,
  NativeModel,
  NativeAddon,
} from '../../native/addon/hogwild_native';

/** Finds the built addon: the fresh build in a checkout, else the copy packaged next to the bundle. */
export function loadNativeAddon(root: string): NativeAddon {
  const candidates = [
    path.join(root, 'native', 'build', 'Release', 'hogwild_native.node'),
    path.join(root, 'dist', 'native', 'hogwild_native.node'),
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`Hogwild native engine not built: none of ${candidates.join(', ')} exists (run "npm run build:native")`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(found) as NativeAddon;
}
