"""Two-way talk, the agent's side (issue 18; docs/backchannel.md): a resident's voice,
relayed by the server over the live link, played out through the camera's ONVIF audio
backchannel or a local speaker.

    link (talk_start, 0x10 audio, talk_stop) -> control.TalkControl -> session.TalkSession
        -> decode (Opus packets or a WebM stream) -> resample -> backchannel | speaker
"""
