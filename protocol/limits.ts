/**
 * Every limit of the protocol, defined once. The settings reader, the command line tools and
 * the message schemas all take their bounds from here (a unit test checks that package.json's
 * setting maxima agree), so that a value one side accepts is never refused by the other.
 */

/** Workers a run starts with. */
export const MAX_WORKERS = 16;
/** Worker ids: forks can take a run past its initial workers. */
export const MAX_WORKER_ID = 1024;
/** Characters of a note injected by the user. */
export const MAX_NOTE_CHARS = 4000;
/** Characters of one worker name (settings, CLI); a fork's name adds a mark and a number. */
export const MAX_NAME_CHARS = 32;
/** Names the settings may list (more than the workers: forks take the next ones). */
export const MAX_NAMES = MAX_WORKERS * 4;
/** Characters of a name as it travels (a fork of a fork of ... stays below this). */
export const MAX_NAME_WIRE_CHARS = 200;
/** Characters of one prompt text in the settings. */
export const MAX_PROMPT_CHARS = 20_000;
/** Characters of the answer pattern (a regular expression). */
export const MAX_ANSWER_PATTERN_CHARS = 1000;
/** Characters of a problem, a prompt text or a step as they travel. */
export const MAX_TEXT = 1_000_000;
/** Characters of a path (model folder). */
export const MAX_PATH_CHARS = 4096;

export const MAX_TEMPERATURE = 5;
/** Top-k: 2^20 is past every vocabulary (Qwen: 151,936). */
export const MAX_TOP_K = 1 << 20;
export const MAX_SEED = 0xffffffff;
/** Token budget of all workers together. */
export const MAX_TOKENS = 10_000_000;
/** Largest context a run may ask for (0 = the model's own). */
export const MAX_CONTEXT = 10_000_000;
/** Smallest context other than 0 (the model's own). */
export const MIN_CONTEXT = 256;
/** The self-check interval that stands for "off" (setting 0): an interval no run reaches. */
export const SELF_CHECK_OFF = 1 << 30;
/** Largest self-check interval a user may set (0 = off). */
export const MAX_SELF_CHECK_INTERVAL = 10_000_000;
export const MAX_THREADS = 1024;

/** Token ids in one list (a prompt, a raw run, a batch). */
export const MAX_IDS = 1 << 20;
/** Block ids, indexes and lengths. */
export const MAX_BLOCK = 1 << 24;
/** Positions and lengths inside a view. */
export const MAX_POSITION = 1 << 26;
/** Steps of a run. */
export const MAX_STEP = 1 << 26;
/** Segments of one worker's view. */
export const MAX_SEGMENTS = 100_000;
/** Layers of a model whose per-layer attention shares a message may carry. */
export const MAX_LAYERS = 1024;
/** Events in one batch. */
export const MAX_EVENTS = 1_000_000;
/** Top logits a raw run may report. */
export const MAX_TOP_LOGITS = 1000;
/** Request ids: both sides count up from 1. */
export const MAX_REQUEST_ID = Number.MAX_SAFE_INTEGER;

/** Run ids: safe as file names (traces are stored under them). */
export const RUN_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_RUN_ID_CHARS = 64;

/** The trace format this code writes and reads. */
export const TRACE_VERSION = 1;
