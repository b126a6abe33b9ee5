#!/bin/sh
echo "@GREETING@ from $(cat /app/message.txt), running as $(id -un)"
