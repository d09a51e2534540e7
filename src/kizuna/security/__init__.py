"""Security: labels, releasability policy, keys, signing and replay protection.

Import from the modules (kept separate so ``kizuna keys`` does not pull in numpy):

* ``kizuna.security.labels``  — label algebra (``combine``, ``releasable_to``, ``NationBits``)
* ``kizuna.security.policy``  — ``Policy``, ``CompiledPolicy`` (batch), ``Policies`` (receive)
* ``kizuna.security.keys``    — key files, ``Keyring``, ``NationKeys``, ``init_keys``
* ``kizuna.security.signing`` — ``Signer``, ``Verifier``, ``Opened``, ``Rejection``
* ``kizuna.security.replay``  — ``ReplayWindow`` (RFC 4303 §3.4.3 anti-replay window)
"""
