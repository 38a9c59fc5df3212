with

source as (

    select * from {{ source('shop', 'customers') }}

),

renamed as (

    select

        ----------  ids
        id as customer_id,

        ---------- text
        first_name,
        last_name,
        first_name || ' ' || last_name as customer_name,
        lower(email) as email,
        upper(country_code) as country_code,

        ---------- timestamps
        cast(created_at as timestamp) as signed_up_at

    from source

)

select * from renamed
