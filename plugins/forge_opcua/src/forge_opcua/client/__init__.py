"""The OPC UA client side of opcua.source: conversion, node resolution, the subscription, the connection."""
