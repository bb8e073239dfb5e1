// whisper.cpp (through @fugood/whisper.node) on one file, printed as JSON on stdout:
//   node run.mjs transcribe MODEL.bin AUDIO.wav [--threads N] [--reps R] [--language en]
//     -> {"text", "language", "segments": [[t0_s, t1_s, text]...], "ms": [per repetition]}
//   node run.mjs vad SILERO.bin AUDIO.wav -> {"segments": [[t0_s, t1_s]...]}
// Greedy (temperature 0, no fallback, beam 1) so that it is comparable with the engine's greedy decoding.
import whisper from '@fugood/whisper.node';

const [mode, model, audio, ...rest] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const threads = Number(opt('threads', '2'));
const reps = Number(opt('reps', '1'));

if (mode === 'vad') {
  const vad = await whisper.initWhisperVad({ filePath: model, useGpu: false, nThreads: threads });
  const segs = await vad.detectSpeechFile(audio, {});
  // t0/t1 in centiseconds, as whisper.cpp reports them.
  console.log(JSON.stringify({ segments: segs.map((s) => [s.t0 / 100, s.t1 / 100]) }));
  await vad.release();
} else {
  const ctx = await whisper.initWhisper({ filePath: model, useGpu: false });
  const ms = [];
  let r;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    r = await ctx.transcribeFile(audio, {
      language: opt('language', 'en'), maxThreads: threads, temperature: 0, temperatureInc: 0, beamSize: 1, bestOf: 1,
    }).promise;
    ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify({
    text: r.result, language: r.language, ms,
    segments: r.segments.map((s) => [s.t0 / 100, s.t1 / 100, s.text]),
  }));
  await ctx.release();
}
