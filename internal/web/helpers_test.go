package web_test

import "net/http"

func httpGet(url string) (*http.Response, error) { return http.Get(url) }
