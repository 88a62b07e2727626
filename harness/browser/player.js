// The canary's own WHEP player (RFC 9725 section 4.2: POST the SDP offer, 201 + answer; DELETE the Location
// to end). Used only where the target's listener page cannot play the booth itself (the reference portal's
// listener.html has no player code); the report then says the page's own player was not exercised.
// Evaluated into the page as a function of the WHEP URL; resolves with the HTTP status of the POST.
async (whepUrl) => {
  let audio = document.getElementById('voxload-player');
  if (!audio) {
    audio = document.createElement('audio');
    audio.id = 'voxload-player';
    audio.autoplay = true;
    document.body.appendChild(audio);
  }
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addEventListener('track', (ev) => {
    audio.srcObject = ev.streams[0] || new MediaStream([ev.track]);
    audio.play().catch(() => {});
  });
  await pc.setLocalDescription(await pc.createOffer());
  // Loopback host candidates gather in a few ms; do not wait for all of them (no STUN/TURN here).
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timer = setTimeout(resolve, 500);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
    });
  });
  const response = await fetch(whepUrl, {method: 'POST', headers: {'Content-Type': 'application/sdp'},
                                          body: pc.localDescription.sdp});
  if (response.status !== 201 && response.status !== 200) return response.status;
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  window.__voxloadPlayerPc = pc;
  return response.status;
}
