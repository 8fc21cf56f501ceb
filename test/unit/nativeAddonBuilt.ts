// For the unit tests that run the real engine: they skip, saying so, in a checkout where the
// native addon is not built (no `npm run build:native`).
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

/** Whether the addon is in dist/native or native/build/Release; if not, warns "<file>: …: <skipped>". */
export function nativeAddonBuilt(file: string, skipped: string): boolean {
  const built = ['dist/native/hogwild_native.node', 'native/build/Release/hogwild_native.node'].some((p) => fs.existsSync(path.join(root, p)));
  if (!built) console.warn(`${file}: the native addon is not built (npm run build:native): ${skipped}`);
  return built;
}
