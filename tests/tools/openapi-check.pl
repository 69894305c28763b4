#!/usr/bin/perl
# openapi-check.pl SPEC [RECORD]: SPEC must be a valid OpenAPI 3.0
# description (JSON::Validator's OpenAPIv3 schema, not keyrite's), and each
# response RECORD lists ("METHOD PATH STATUS BODYFILE", one a line, as the
# tests' api helper writes them) must match SPEC's schema for that call.
# Prints each error; exits 1 on any.
use strict;
use warnings;
use JSON::Validator::Schema::OpenAPIv3;
use Mojo::File qw(path);
use Mojo::JSON qw(decode_json);

my ($spec, $record) = @ARGV;
my $schema = JSON::Validator::Schema::OpenAPIv3->new($spec);
my @errors = map {"$spec: $_"} @{$schema->errors};
my $n = 0;
if ($record && !@errors) {
	for my $line (split /\n/, path($record)->slurp) {
		my ($method, $p, $status, $file) = split / /, $line;
		$p =~ s/\?.*//;
		$p =~ s{^devices/[^/]+$}{devices/{device}};
		$p =~ s{^poll/\d+/ack$}{poll/{id}/ack};
		my $body = decode_json(path($file)->slurp);
		my @e = $schema->validate_response([lc $method, "/$p", $status],
			{body => sub { {exists => 1, value => $body, content_type => "application/json"} }});
		push @errors, map {"$method /$p $status: $_"} @e;
		$n++;
	}
}
print "$_\n" for @errors;
print "openapi-check: $n responses match\n" unless @errors;
exit(@errors ? 1 : 0);
