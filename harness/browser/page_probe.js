// voxload canary instrumentation, injected before any of the target's scripts run (Playwright add_init_script).
//
// It changes nothing the page does; it only watches:
// - every RTCPeerConnection the page creates (kept for getStats(); inbound-rtp / outbound-rtp audio figures),
// - every remote audio track: its PCM is tapped through a second AudioContext + AudioWorklet and kept as
//   int16 chunks stamped with the wall-clock time each chunk's first sample was handed over for playout,
//   so that Python can run harness/rtc/markers.py's detector on exactly what this browser plays,
// - every fetch() POST whose URL ends in /whep or /whip (WHEP retries = WHEP POSTs - 1 per session).
// Python drains it with window.__voxload.drain() (see harness/browser/canary.py).
(() => {
  if (window.__voxload) return;
  const NativePC = window.RTCPeerConnection;
  const state = {
    pcs: [],
    chunks: [],           // [{t_play_ms, t_ear_ms, pcm_b64, ...}] not yet drained
    signalling: [],       // [{kind: 'whep'|'whip', status, t_ms, url}] not yet drained
    firstAudioMs: null,   // performance.now() of the first tapped audio above the noise floor
    tapError: null,
    tapped: new Set(),
  };
  const LEVEL_FLOOR = 1e-4;  // RMS of a block that counts as "audio" (Opus comfort noise is far below this)

  function epochMs(perfMs) { return performance.timeOrigin + perfMs; }

  function b64(int16) {
    const bytes = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }

  const WORKLET = `
    class VoxloadTap extends AudioWorkletProcessor {
      constructor() { super(); this.buf = new Float32Array(4800); this.n = 0; this.t0 = 0; }
      process(inputs) {
        const ch = inputs[0] && inputs[0][0];
        if (ch) {
          if (this.n === 0) this.t0 = currentTime;
          this.buf.set(ch, this.n); this.n += ch.length;
          if (this.n + 128 > this.buf.length) {
            this.port.postMessage({t0: this.t0, pcm: this.buf.slice(0, this.n)});
            this.n = 0;
          }
        }
        return true;
      }
    }
    registerProcessor('voxload-tap', VoxloadTap);`;

  async function tapTrack(track) {
    if (state.tapped.has(track.id)) return;
    state.tapped.add(track.id);
    try {
      const ctx = new AudioContext({sampleRate: 48000});
      const url = URL.createObjectURL(new Blob([WORKLET], {type: 'application/javascript'}));
      await ctx.audioWorklet.addModule(url);
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const node = new AudioWorkletNode(ctx, 'voxload-tap');
      // A muted gain keeps the graph pulled without playing the audio twice.
      const mute = ctx.createGain();
      mute.gain.value = 0;
      source.connect(node);
      node.connect(mute);
      mute.connect(ctx.destination);
      if (ctx.state === 'suspended') await ctx.resume().catch(() => {});
      node.port.onmessage = (ev) => {
        const {t0, pcm} = ev.data;
        // Two clocks for the block's first sample (context time t0):
        // - play: when Chromium's WebRTC audio pipeline handed it to Web Audio for playout (decoded, out of
        //   NetEq), from the context time rendered now; mouth-to-ear uses this one: like the synthetic
        //   probe's decode time it excludes the sound card;
        // - ear: when it leaves this context's output device (getOutputTimestamp maps context time to
        //   performance time), i.e. play + the device's output latency (headless Chromium: a fake sink).
        const playPerfMs = performance.now() - (ctx.currentTime - t0) * 1000;
        const ts = ctx.getOutputTimestamp();
        const earPerfMs = ts.performanceTime + (t0 - ts.contextTime) * 1000;
        const ints = new Int16Array(pcm.length);
        let energy = 0;
        for (let i = 0; i < pcm.length; i++) {
          const v = Math.max(-1, Math.min(1, pcm[i]));
          ints[i] = v * 32767;
          energy += v * v;
        }
        if (state.firstAudioMs === null && Math.sqrt(energy / pcm.length) > LEVEL_FLOOR) {
          state.firstAudioMs = playPerfMs;
        }
        state.chunks.push({t_play_ms: epochMs(playPerfMs), t_ear_ms: epochMs(earPerfMs), pcm_b64: b64(ints),
                           sample_rate: ctx.sampleRate, output_latency_ms: ctx.outputLatency * 1000,
                           base_latency_ms: ctx.baseLatency * 1000});
        if (state.chunks.length > 2000) state.chunks.splice(0, state.chunks.length - 2000);  // Python stopped draining
      };
    } catch (err) {
      state.tapError = String(err && err.message || err);
    }
  }

  if (NativePC) {
    const Wrapped = function (...args) {
      const pc = new NativePC(...args);
      state.pcs.push(pc);
      pc.addEventListener('track', (ev) => { if (ev.track.kind === 'audio') tapTrack(ev.track); });
      return pc;
    };
    Wrapped.prototype = NativePC.prototype;
    Object.setPrototypeOf(Wrapped, NativePC);
    window.RTCPeerConnection = Wrapped;
  }

  const nativeFetch = window.fetch;
  window.fetch = async function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url) || String(input);
    const method = ((init && init.method) || (input && input.method) || 'GET').toUpperCase();
    const m = method === 'POST' && /\/(whep|whip)(\?|$)/.exec(url);
    if (!m) return nativeFetch.apply(this, arguments);
    const t = performance.now();
    // Which host candidates the offer carried: a page without microphone permission hides its addresses
    // behind mDNS ".local" names, which the media server must still answer.
    const body = typeof (init && init.body) === 'string' ? init.body : '';
    const hosts = body.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:') && / typ host/.test(l));
    const offer_candidates = {host: hosts.length, mdns: hosts.filter((l) => /\.local /.test(l)).length};
    try {
      const response = await nativeFetch.apply(this, arguments);
      state.signalling.push({kind: m[1], status: response.status, t_epoch_ms: epochMs(t), url, offer_candidates});
      return response;
    } catch (err) {
      state.signalling.push({kind: m[1], status: null, error: String(err && err.message || err), t_epoch_ms: epochMs(t), url,
                             offer_candidates});
      throw err;
    }
  };

  const FIELDS = ['packetsReceived', 'packetsLost', 'jitter', 'jitterBufferDelay', 'jitterBufferEmittedCount',
                  'jitterBufferTargetDelay', 'concealedSamples', 'silentConcealedSamples', 'totalSamplesReceived',
                  'concealmentEvents', 'audioLevel', 'totalAudioEnergy', 'bytesReceived', 'packetsDiscarded',
                  'packetsSent', 'bytesSent', 'headerBytesSent', 'retransmittedPacketsSent', 'targetBitrate'];

  async function stats() {
    const out = [];
    for (let i = 0; i < state.pcs.length; i++) {
      const pc = state.pcs[i];
      let report;
      try { report = await pc.getStats(); } catch (err) { continue; }
      report.forEach((s) => {
        if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.kind === 'audio') {
          const row = {pc: i, type: s.type, ssrc: s.ssrc, connection: pc.connectionState};
          for (const f of FIELDS) if (s[f] !== undefined) row[f] = s[f];
          out.push(row);
        }
      });
    }
    return out;
  }

  window.__voxload = {
    async drain() {
      const chunks = state.chunks.splice(0);
      const signalling = state.signalling.splice(0);
      return {
        t_epoch_ms: epochMs(performance.now()),
        stats: await stats(),
        chunks,
        signalling,
        first_audio_epoch_ms: state.firstAudioMs === null ? null : epochMs(state.firstAudioMs),
        page_start_epoch_ms: performance.timeOrigin,
        peer_connections: state.pcs.length,
        tap_error: state.tapError,
      };
    },
  };
})();
