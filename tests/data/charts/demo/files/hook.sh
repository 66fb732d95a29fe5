#!/bin/sh
echo "hook"
