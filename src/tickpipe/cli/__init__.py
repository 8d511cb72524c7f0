"""tickpipe's command line: wiring only (``tickpipe gateway|watch|demo``)."""
