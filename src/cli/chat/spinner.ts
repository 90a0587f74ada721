// A one-line spinner on stderr for anything slow (waiting for the first token, seeding the
// demo). Off when stderr is not a terminal, so logs and pipes never see control characters.
import type { TextSink } from '../io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Spinner {
  stop(): void;
}

export function startSpinner(sink: TextSink, enabled: boolean, text: string, intervalMs = 80): Spinner {
  if (!enabled) return { stop: () => {} };
  let i = 0;
  const draw = () => sink.write(`\r${FRAMES[i++ % FRAMES.length]} ${text}`);
  draw();
  const timer = setInterval(draw, intervalMs);
  let stopped = false;
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // Erase the line so the answer starts in column 0.
      sink.write('\r\x1b[2K');
    },
  };
}
