"""The job lifecycle: submit and look up (``queries``), state changes (``lifecycle``), their
events, fair-share dispatch and quotas."""
