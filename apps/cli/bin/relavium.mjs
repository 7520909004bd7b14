#!/usr/bin/env node
import "../dist/relavium.mjs"
