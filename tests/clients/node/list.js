// SPDX-License-Identifier: Apache-2.0
// Google's Node libraries with no configuration at all, as an application on
// GKE would use them: Application Default Credentials must find the metadata
// server by themselves. Usage: node list.js BUCKET OBJECT; prints one
// "name: value" line per finding, exits 1 on the first failure.
'use strict';
const {Storage} = require('@google-cloud/storage');
const {GoogleAuth} = require('google-auth-library');
const gcpMetadata = require('gcp-metadata');

async function main(bucketName, objectName) {
  console.log('metadata available: ' + (await gcpMetadata.isAvailable()));
  console.log('project: ' + (await gcpMetadata.project('project-id')));

  const auth = new GoogleAuth({scopes: ['https://www.googleapis.com/auth/cloud-platform']});
  const token = await auth.getAccessToken();
  console.log('token: ' + (token ? token.slice(0, 8) + '…' : 'none'));
  console.log('auth project: ' + (await auth.getProjectId()));

  const storage = new Storage();
  const [files] = await storage.bucket(bucketName).getFiles();
  console.log('files: ' + files.map(f => f.name).join(' '));
  const [bytes] = await storage.bucket(bucketName).file(objectName).download();
  console.log('bytes: ' + JSON.stringify(bytes.toString('utf8')));
}

main(process.argv[2], process.argv[3]).catch(err => {
  console.log('error: ' + (err && err.stack ? err.stack : err));
  if (err && err.response)
    console.log('response: ' + err.response.status + ' ' + JSON.stringify(err.response.data));
  process.exit(1);
});
